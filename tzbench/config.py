"""Run configurations: pydantic models (extra="forbid"), YAML files and ``--set`` overrides.

A config is plain data. Component hyper-parameters live in free-form ``params`` dicts here and
are validated by each component's own params model when the run builds it, so an error always
names the component and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tzbench.catalog import format_validation_error
from tzbench.errors import ConfigError
from tzbench.yamlio import load_yaml

__all__ = [
    "ConfigError",
    "ComponentRef",
    "DataConfig",
    "OptimConfig",
    "TrainConfig",
    "EvalConfig",
    "apply_overrides",
    "load_config",
    "recipe_to_config",
    "RECIPE_FIELDS",
]


# ConfigError is defined in tzbench.errors (torch-free) and re-exported here.


def _default_judges() -> list[str]:
    from tzbench.registry import load_registry  # registry.yaml says which judges a run reads with

    return list(load_registry().default_judges)


def _default_dataset() -> str:
    from tzbench.registry import load_registry  # the dataset of registry.yaml's default_benchmark

    return load_registry().default_dataset()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(_Strict):
    """A component by name plus its hyper-parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class DataConfig(_Strict):
    """Which dataset feeds the run and how it is batched."""

    dataset: str = Field(default_factory=_default_dataset, description="registry.yaml default_benchmark's dataset")
    params: dict[str, Any] = Field(default_factory=dict)
    batch_size: int = Field(default=32, ge=1)
    eval_batch_size: int = Field(default=64, ge=1)
    num_workers: int = Field(default=0, ge=0)
    subsets: list[str] = Field(default_factory=lambda: ["easy", "medium", "hard"])


class OptimConfig(_Strict):
    """Adam, as TextZoom trains every model (lr 1e-3, beta1 0.5)."""

    lr: float = Field(default=1e-3, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float | None = Field(default=None, gt=0, description="max global gradient norm (of the scaled loss)")
    loss_scale: float = Field(
        default=1.0, gt=0, description="multiplies the loss before backward; TextZoom's loop optimises "
        "loss * 100 and clips that gradient at 0.25, so the two only reproduce it together",
    )
    schedule: Literal["constant", "cosine"] = Field(
        default="constant", description="lr schedule per update: constant (TextZoom) or warm-up + cosine")
    warmup_steps: int = Field(default=0, ge=0, description="linear warm-up updates (cosine schedule)")
    warmup_init_ratio: float = Field(default=0.01, gt=0, le=1, description="warm-up starts at lr * this")
    min_lr_ratio: float = Field(default=0.01, ge=0, le=1, description="the cosine ends at lr * this")
    ema_decay: float | None = Field(
        default=None, gt=0, lt=1, description="exponential moving average of the weights (with warm-up); "
        "validation, selection and the final eval use the average. None: off")

    @model_validator(mode="after")
    def _warmup_needs_a_schedule(self) -> OptimConfig:
        if self.warmup_steps and self.schedule == "constant":
            raise ValueError("optim.warmup_steps needs optim.schedule='cosine'")
        return self


class TrainConfig(_Strict):
    """Everything a training run needs; the default trains on ``synth`` in minutes on a CPU."""

    model: ComponentRef
    loss: ComponentRef | None = Field(default=None, description="None: the model's default loss")
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    steps: int = Field(default=300, ge=0)
    val_every: int = Field(default=100, ge=1)
    val_max_samples: int = Field(default=256, ge=1)
    checkpoint_every: int = Field(default=100, ge=1)
    selection_judge: str | None = Field(
        default=None,
        description="judge whose val accuracy selects the best checkpoint; None: the protocol's judge "
        "(clean: registry selection_judge, legacy: registry legacy_selection_judge); 'psnr' or '-': select by PSNR",
    )
    judges: list[str] = Field(default_factory=_default_judges, description="registry.yaml default_judges")
    eval_after: bool = Field(default=True, description="evaluate the best checkpoint on test when done")
    protocol: Literal["clean", "legacy"] = "clean"
    seed: int = 0
    device: str = "auto"
    out_dir: str = "runs"
    deterministic: bool = False
    tags: dict[str, str] = Field(default_factory=dict, description="free labels recorded with the run")
    recipe: str | None = Field(default=None, description="the registry.yaml recipe this config was built from")
    compile: bool = Field(
        default=False,
        description="torch.compile the model being trained (inductor; on the CPU it needs a C++ compiler). "
        "A speed option: the cpu recipe sets it where it measured faster (docs/performance.md)",
    )
    init: str | None = Field(
        default=None,
        description="start from these weights instead of the model's init (fine-tuning): a tzbench SR "
        "checkpoint (file or run folder), or 'pretrained' / 'pretrained:TAG' for the shipped weights; "
        "the run records the file and its sha256",
    )


class EvalConfig(_Strict):
    """Evaluate one SR model (checkpoint or untrained, e.g. bicubic) with the judges."""

    model: ComponentRef
    checkpoint: str | None = Field(default=None, description="made absolute: the run records where it is")
    data: DataConfig = Field(default_factory=DataConfig)
    judges: list[str] = Field(default_factory=_default_judges, description="registry.yaml default_judges")
    protocol: Literal["clean", "legacy"] = "clean"
    max_samples: int | None = Field(default=None, ge=1)
    seed: int = 0
    device: str = "auto"
    tags: dict[str, str] = Field(default_factory=dict, description="free labels recorded with the run")

    @field_validator("checkpoint")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        # The run's row keeps this path; `report` and `leaderboard` read it from any folder.
        return str(Path(v).expanduser().absolute()) if v else v


def _parse_value(raw: str) -> Any:
    # YAML scalars give the user ints, floats, bools, null and [lists] without eval().
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def _set_path(data: dict[str, Any], model: type[BaseModel] | None, path: str, value: Any) -> None:
    parts = path.split(".")
    if not all(parts):
        raise ConfigError(f"--set {path}: empty path component")
    node: dict[str, Any] = data
    current: type[BaseModel] | None = model
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        sub_model: type[BaseModel] | None = None
        if current is not None:
            field = current.model_fields.get(part)
            if field is None:
                raise ConfigError(
                    f"--set {path}: {'.'.join(parts[:i]) or 'config'} has no field {part!r} "
                    f"(fields: {', '.join(current.model_fields)})"
                )
            ann = field.annotation
            for cand in getattr(ann, "__args__", (ann,)):
                if isinstance(cand, type) and issubclass(cand, BaseModel):
                    sub_model = cand
        if last:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            if child is not None and not isinstance(child, dict):
                raise ConfigError(f"--set {path}: {'.'.join(parts[: i + 1])} is not a mapping")
            child = {}
            node[part] = child
        node = child
        current = sub_model  # None below a free-form dict (component params)


def apply_overrides(data: dict[str, Any], model: type[BaseModel], sets: list[str]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides to a raw config dict; paths are checked against ``model``."""
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected PATH=VALUE, e.g. --set optim.lr=0.0005")
        path, _, raw = item.partition("=")
        _set_path(data, model, path.strip(), _parse_value(raw))
    return data


def load_config(
    model: type[BaseModel],
    base: dict[str, Any],
    config_file: str | Path | None = None,
    sets: list[str] | None = None,
) -> Any:
    """Build a validated config: ``base`` < YAML file < ``--set`` overrides."""
    data: dict[str, Any] = dict(base)
    if config_file is not None:
        path = Path(config_file)
        try:
            loaded = load_yaml(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        data = _deep_merge(data, loaded)
    apply_overrides(data, model, list(sets or []))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = str(config_file) if config_file else "config"
        raise ConfigError(f"invalid configuration: {format_validation_error(exc, where)}") from exc


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


#: Where each key of a registry.yaml recipe goes in a :class:`TrainConfig`.
RECIPE_FIELDS: dict[str, tuple[str, ...]] = {
    "batch_size": ("data", "batch_size"),
    "lr": ("optim", "lr"),
    "betas": ("optim", "betas"),
    "weight_decay": ("optim", "weight_decay"),
    "loss_scale": ("optim", "loss_scale"),
    "grad_clip": ("optim", "grad_clip"),
    "schedule": ("optim", "schedule"),
    "warmup_steps": ("optim", "warmup_steps"),
    "warmup_init_ratio": ("optim", "warmup_init_ratio"),
    "min_lr_ratio": ("optim", "min_lr_ratio"),
    "ema_decay": ("optim", "ema_decay"),
    "steps": ("steps",),
    "val_every": ("val_every",),
    "val_max_samples": ("val_max_samples",),
    "compile": ("compile",),
}


def recipe_to_config(recipe: dict[str, Any], name: str = "recipe") -> dict[str, Any]:
    """A raw :class:`TrainConfig` fragment from one model's recipe (``Registry.recipe``).

    ``loss``/``loss_params`` become the run's loss, ``model_params`` the model's params (an
    initialisation choice, never the architecture); ``epochs`` is left to the caller (it needs the
    train split's size); any other unknown key is an error naming the recipe and the key.
    """
    out: dict[str, Any] = {}
    for key, value in recipe.items():
        if key in ("loss", "loss_params", "epochs", "model_params"):
            continue
        path = RECIPE_FIELDS.get(key)
        if path is None:
            raise ConfigError(f"{name}: unknown recipe key {key!r} (known: loss, loss_params, model_params, epochs, "
                              f"{', '.join(RECIPE_FIELDS)})")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = list(value) if isinstance(value, tuple) else value
    if recipe.get("loss"):
        out["loss"] = {"name": recipe["loss"], "params": dict(recipe.get("loss_params") or {})}
    if recipe.get("model_params"):
        out["model"] = {"params": dict(recipe["model_params"])}
    return out
