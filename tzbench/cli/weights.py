"""``tzbench weights``: judges' weights files in the tzbench home folder, and shipping our own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tzbench.cli._common import DbOpt, OutFormat, _catalog, _emit, _store, console, out
from tzbench.config import ConfigError

__all__ = ["register", "weights_add", "weights_list", "weights_ship"]


def register(app: typer.Typer) -> None:
    """Add the ``weights`` group (add, list, ship) to ``app``."""
    weights_app = typer.Typer(help="Official recognizer weights in the tzbench home folder.", no_args_is_help=True)
    weights_app.command("add")(weights_add)
    weights_app.command("list")(weights_list)
    weights_app.command("ship")(weights_ship)
    app.add_typer(weights_app, name="weights")


def weights_add(
    ctx: typer.Context,
    component: Annotated[str, typer.Argument(help="the judge the file is for (tzbench list recognizers)")],
    path: Path,
    replace: Annotated[bool, typer.Option("--replace", help="replace a file already there")] = False,
) -> None:
    """Copy a judge's weights file into $TZBENCH_HOME/weights/JUDGE/ and record its sha256.

    The file must load into that judge (strict keys and shapes) before anything is copied,
    and an existing file is replaced only with --replace."""
    from tzbench.home import add_weights, find_weights
    from tzbench.weights import is_safetensors_file

    catalog = _catalog(ctx)
    spec = catalog.spec("recognizers", component)  # unknown names: did-you-mean, exit 2
    names = [w.filename for w in spec.weights]
    if not names:
        raise ConfigError(f"judge {component!r} reads no weights file from the tzbench home folder")
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    # A trained (safetensors) file takes the trained slot, so it never masquerades as the
    # released file and a released one added later is preferred over it.
    trained = [n for n in names if n.endswith(".safetensors")]
    filename = trained[0] if is_safetensors_file(path) and trained else names[0]
    existing = find_weights(component, filename)
    if existing is not None and not replace:
        raise ConfigError(f"{existing} exists already: pass --replace to replace it (nothing copied)")
    # Loading refuses pickles with code, foreign checkpoints and any key/shape mismatch; a
    # tzbench checkpoint is built with the params it records (e.g. a smaller vitstr).
    params: dict[str, Any] = {"weights": str(path), "device": "cpu"}
    if is_safetensors_file(path):
        from tzbench.runner.checkpoint import read_embedded_meta

        recorded = (read_embedded_meta(path) or {}).get("params")
        params = {**(recorded if isinstance(recorded, dict) else {}), **params}
    catalog.create("recognizers", component, params)
    entry = add_weights(component, path, filename)
    out.print(f"added {entry.path} (sha256 {entry.sha256})")


def weights_list() -> None:
    """Weights files present in the home folder."""
    from tzbench.home import list_weights, tzbench_home

    rows = [{"component": w.component, "file": str(w.path), "sha256": w.sha256, "bytes": w.size} for w in list_weights()]
    if not rows:
        console.print(f"no weights in {tzbench_home() / 'weights'}")
    _emit(rows, ["component", "file", "sha256", "bytes"], OutFormat.table, title="weights")


def weights_ship(
    run_id: Annotated[int, typer.Argument(help="a finished training run")],
    out_file: Annotated[Path, typer.Option("--out", help="the .safetensors file to write (next to a .json)")],
    half: Annotated[bool, typer.Option("--half", help="store floats as float16 (half the size)")] = False,
    db: DbOpt = None,
) -> None:
    """Write a training run's best checkpoint (``train`` or ``train-recognizer``) as weights to
    ship in a plugin, with its provenance (dataset, recipe, steps, run id, commit, test scores)."""
    from tzbench.pretrained import export_pretrained

    path, sha, prov = export_pretrained(_store(db), run_id, out_file, half=half)
    out.print(f"wrote {path} (sha256 {sha}); run {prov['run_id']}, {prov['benchmark']}, recipe {prov['recipe']}, "
              f"step {prov['steps']}, evals {prov['eval_run_ids']}")
