"""tzbench_textzoom plugin: the ``textzoom``, ``synth`` and ``wild`` datasets and ``tzbench data``.

Importing this module is cheap (pydantic params only); dataset code and torch load when a
dataset is created or a ``data`` command runs.
"""

from tzbench.hookspecs import hookimpl
from tzbench.specs import DatasetSpec
from tzbench_textzoom.params import SynthParams, TextZoomParams, WildParams

_SPLITS = ("train", "val", "test")
_SUBSETS = ("easy", "medium", "hard")


@hookimpl
def register_datasets() -> list:
    """The built-in datasets."""
    return [
        DatasetSpec(
            name="textzoom",
            target="tzbench_textzoom.textzoom:TextZoomDataset",
            params=TextZoomParams,
            summary="TextZoom real LR/HR pairs from the official LMDBs (root or $TZBENCH_TEXTZOOM)",
            paper="Wang et al., Scene Text Image Super-Resolution in the Wild, ECCV 2020",
            splits=_SPLITS,
            subsets=_SUBSETS,
        ),
        DatasetSpec(
            name="synth",
            target="tzbench_textzoom.synth:SynthDataset",
            params=SynthParams,
            summary="generated word pairs with camera-like LR (embedded default, offline)",
            splits=_SPLITS,
            subsets=_SUBSETS,
        ),
        DatasetSpec(
            name="wild",
            target="tzbench_textzoom.wild:WildDataset",
            params=WildParams,
            summary="real word crops (labels.tsv folders or LMDBs) with camera-like made LR",
            splits=_SPLITS,
            subsets=_SUBSETS,
        ),
    ]


@hookimpl
def register_commands(app) -> None:  # noqa: ANN001 - typer.Typer, imported lazily
    """Add ``tzbench data`` (make-lmdb, export, inspect, synth)."""
    from tzbench_textzoom.cli import add_commands

    add_commands(app)
