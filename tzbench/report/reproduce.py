"""``tzbench reproduce``: the paper's experiments as sequences of ordinary tzbench runs.

Every experiment is a list of (train config, eval config) pairs built from registry.yaml's
recipes and a *budget*; each one goes through the same runner as ``tzbench train``/``eval``, so
its results land in the store like any other run and the report reads them back from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tzbench.catalog import Catalog, format_validation_error
from tzbench.config import ComponentRef, ConfigError, DataConfig, EvalConfig, TrainConfig, recipe_to_config
from tzbench.db.store import DIED_MESSAGE, Store
from tzbench.home import find_weights, tzbench_home
from tzbench.registry import Registry, load_registry

__all__ = ["Budget", "load_budgets", "Job", "plan", "available_judges", "run_plan", "steps_for_epochs",
           "find_equivalent_train", "find_equivalent_eval", "PlanInterrupted"]

Experiment = Literal["table4", "table3", "syn-vs-real"]


class Budget(BaseModel):
    """How much compute one model gets: training steps and data sizes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recipe: str = Field(default="paper", description="registry.yaml recipe; the fields below override it")
    steps: int | None = Field(default=None, description="training steps; None: the recipe's, else epochs")
    epochs: int | None = None
    batch_size: int | None = None
    val_every: int | None = None
    val_max_samples: int | None = None
    data: dict[str, Any] = Field(default_factory=dict, description="dataset params per benchmark")
    model_steps: dict[str, int] = Field(default_factory=dict, description="per-model step overrides")
    eval_max_samples: int | None = Field(default=None, description="test pairs per subset (None: all)")
    note: str = ""


def load_budgets(registry: Registry | None = None) -> dict[str, Budget]:
    """registry.yaml's ``budgets``, validated: what ``tzbench reproduce --budget`` accepts."""
    registry = registry or load_registry()
    out = {}
    for name, fields in registry.budgets.items():
        try:
            out[name] = Budget.model_validate(fields)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, f"registry.yaml budgets.{name}")) from None
    return out

@dataclass
class Job:
    """One model's train + eval in an experiment."""

    label: str
    model: str
    train: TrainConfig | None
    eval: EvalConfig
    notes: list[str] = field(default_factory=list)


def available_judges(catalog: Catalog, registry: Registry) -> list[str]:
    """Registered judges that can run here: no weights needed, or their weights are present."""
    out = []
    for name in registry.judges:
        if name not in catalog.names("recognizers"):
            continue
        spec = catalog.spec("recognizers", name)
        if not spec.needs_weights or any(find_weights(name, w.filename) for w in spec.weights):
            out.append(name)
    return out


def _loss_for(model: str, registry: Registry, catalog: Catalog, notes: list[str]) -> ComponentRef | None:
    recipe = registry.recipe(model)
    name = recipe.get("loss")
    if name is None:
        return None
    params: dict[str, Any] = dict(recipe.get("loss_params", {}))
    spec = catalog.spec("losses", name)
    if spec.weights_file and spec.params_without_weights:
        where = tzbench_home() / "weights" / spec.weights_file
        if not where.is_file():
            # Without its weights the loss cannot be computed; train it with the params its
            # plugin names for that case and say so, instead of failing or training silently.
            params.update(spec.params_without_weights)
            shown = ", ".join(f"{k}={v}" for k, v in spec.params_without_weights.items())
            notes.append(f"{model} trained with {name} {shown}: no {spec.weights_file} at {where}")
    return ComponentRef(name=name, params=params)


def _data(benchmark: str, budget: Budget, extra: dict[str, Any] | None = None,
          recipe_batch: int | None = None) -> DataConfig:
    """The budget's batch size wins over the recipe's (``small`` trains the paper recipe at 8)."""
    params = {**budget.data.get(benchmark, {}), **(extra or {})}
    return DataConfig(dataset=benchmark, params=params, batch_size=budget.batch_size or recipe_batch or 32)


def _train_config(m: str, budget: Budget, budget_name: str, registry: Registry, catalog: Catalog,
                  dataset: str, data_extra: dict[str, Any], notes: list[str], **fields: Any) -> TrainConfig:
    """Model ``m``'s training under ``budget``: its recipe, with the budget's own fields on top."""
    base = recipe_to_config(registry.recipe(m, budget.recipe), f"registry.yaml recipes.{budget.recipe}")
    base.pop("loss", None)  # _loss_for picks it, with the note when a term cannot be computed
    model_params = base.pop("model", {}).get("params", {})
    data = _data(dataset, budget, data_extra, (base.pop("data", None) or {}).get("batch_size"))
    for key in ("val_every", "val_max_samples"):
        if getattr(budget, key) is not None:
            base[key] = getattr(budget, key)
    base.setdefault("val_every", 100)
    base.setdefault("val_max_samples", 256)
    if m in budget.model_steps:
        base["steps"] = budget.model_steps[m]
        notes.append(f"{base['steps']} steps (budget {budget_name} caps this model)")
    elif budget.steps is not None or budget.epochs is not None:
        base["steps"] = budget.steps or 0  # 0: epochs, converted by run_plan
    base["checkpoint_every"] = max(int(base["val_every"]), 1)
    return TrainConfig(model=ComponentRef(name=m, params=model_params), loss=_loss_for(m, registry, catalog, notes),
                       data=data, recipe=budget.recipe, **base, **fields)


def plan(
    experiment: Experiment,
    benchmark: str,
    budget_name: str,
    catalog: Catalog,
    judges: list[str] | None = None,
    registry: Registry | None = None,
    seed: int = 0,
    only: list[str] | None = None,
) -> list[Job]:
    """The jobs of an experiment (restricted to ``only`` models when given); nothing runs here."""
    registry = registry or load_registry()
    budgets = load_budgets(registry)
    if budget_name not in budgets:
        raise ConfigError(f"unknown budget {budget_name!r}; expected one of {', '.join(budgets)}")
    if benchmark not in registry.benchmarks:
        raise ConfigError(f"unknown benchmark {benchmark!r}; registry.yaml has {', '.join(registry.benchmarks)}")
    budget = budgets[budget_name]
    dataset = registry.benchmarks[benchmark].dataset
    judges = judges or available_judges(catalog, registry)
    if experiment not in registry.experiments:
        raise ConfigError(f"unknown experiment {experiment!r}; registry.yaml has {', '.join(registry.experiments)}")
    models = list(registry.experiments[experiment])
    if only:
        unknown = sorted(set(only) - set(models))
        if unknown:
            raise ConfigError(f"--only {', '.join(unknown)}: not part of {experiment} ({', '.join(models)})")
        models = [m for m in models if m in only]
    for m in models:
        catalog.entry("sr-models", m)  # unknown models fail before anything runs

    jobs: list[Job] = []
    variants: list[tuple[str, dict[str, Any]]] = [("", {})]
    if experiment == "syn-vs-real":
        lr_field = "lr_source"
        fields = catalog.spec("datasets", dataset).params.model_fields
        if lr_field not in fields:
            raise ConfigError(f"dataset {dataset!r} has no lr_source param: syn-vs-real needs it")
        variants = [("real-lr", {}), ("bicubic-lr", {lr_field: "bicubic"})]
    for m in models:
        for suffix, train_extra in variants:
            notes: list[str] = []
            label = f"{m}:{suffix}" if suffix else m
            tags = {"experiment": experiment, "budget": budget_name, "label": label}
            spec = catalog.spec("sr-models", m)
            eval_data = _data(dataset, budget)
            train_cfg = None
            if spec.trainable:
                train_cfg = _train_config(m, budget, budget_name, registry, catalog, dataset, train_extra, notes,
                                          judges=judges, eval_after=False, seed=seed, out_dir="runs", tags=tags)
            # the eval builds the model as it was trained (e.g. TSRN's stn_at_test in the cpu recipe)
            eval_model = ComponentRef(name=m, params=train_cfg.model.params if train_cfg else {})
            eval_cfg = EvalConfig(model=eval_model, data=eval_data, judges=judges, seed=seed, tags=tags,
                                  max_samples=budget.eval_max_samples)
            jobs.append(Job(label, m, train_cfg, eval_cfg, notes))
    return jobs


class PlanInterrupted(RuntimeError):
    """A training in the plan was interrupted (SIGINT/SIGTERM); its state is saved for resuming."""


#: Config fields that do not change what a run computes; runs differing only in these are the same run.
#: ``judges`` names who reads a training's own final eval, which reproduce runs as a job of its own
#: (a judge added to the defaults must not retrain every model), and compile is a speed option.
_INCIDENTAL = frozenset({"tags", "out_dir", "eval_after", "device", "compile", "judges"})


def _essence(config: dict[str, Any], fields: Any) -> dict[str, Any]:
    out = {k: config.get(k) for k in fields if k not in _INCIDENTAL}
    data = dict(out.get("data") or {})
    data.pop("num_workers", None)
    out["data"] = data
    return out


def _resumable(run: Any) -> bool:
    """Stopped by a signal or killed (marked dead by the store), with its training state on disk."""
    stopped = run.status == "interrupted" or (run.status == "failed" and run.message == DIED_MESSAGE)
    run_dir = (run.config or {}).get("run_dir")
    return bool(stopped and run_dir and (Path(run_dir) / "last.safetensors").is_file())


def find_equivalent_train(store: Store, cfg: TrainConfig) -> tuple[Any | None, Any | None]:
    """A finished train run computing exactly ``cfg`` (tags, device and output folder aside) whose
    best checkpoint is still on disk, and else an interrupted one that can be resumed."""
    want = _essence(cfg.model_dump(mode="json"), TrainConfig.model_fields)
    store.reap_dead_runs()
    finished = interrupted = None
    for run in store.list_runs(kind="train", sr_model=cfg.model.name, limit=10_000):
        if _essence(run.config or {}, TrainConfig.model_fields) != want:
            continue
        if finished is None and run.status == "finished" and run.checkpoint and Path(run.checkpoint).is_file():
            finished = run
        if interrupted is None and _resumable(run):
            interrupted = run
    return finished, interrupted


def find_equivalent_eval(store: Store, cfg: EvalConfig) -> Any | None:
    """A finished eval run of exactly ``cfg`` (same tags and checkpoint; device aside)."""
    want = cfg.model_dump(mode="json")
    want.pop("device", None)
    for run in store.list_runs(kind="eval", sr_model=cfg.model.name, limit=10_000):
        have = {k: (run.config or {}).get(k) for k in want}
        if run.status == "finished" and have == want:
            return run
    return None


def steps_for_epochs(cfg: TrainConfig, epochs: int, catalog: Catalog) -> int:
    """Training steps that make ``epochs`` passes over ``cfg``'s train split at its batch size."""
    provider = catalog.create("datasets", cfg.data.dataset, cfg.data.params)
    n = len(provider.load("train", None))
    return max(1, math.ceil(epochs * n / cfg.data.batch_size))


def run_plan(
    jobs: list[Job],
    store: Store,
    catalog: Catalog,
    epochs_to_steps: Callable[[TrainConfig], int] | None = None,
    progress: bool = True,
    on_done: Callable[[Job, int], None] | None = None,
    reuse: bool = True,
) -> list[int]:
    """Train and evaluate each job in order; returns the eval run ids.

    With ``reuse`` (the default), work already in the store is not redone: a job whose eval run
    exists is skipped, a training identical to a finished one (tags aside: table3 and syn-vs-real
    share rows with table4) reuses its checkpoint, and an interrupted identical training is
    resumed, so re-running an interrupted ``reproduce`` picks up where it stopped.
    """
    from tzbench.runner.evaluate import evaluate
    from tzbench.runner.train import TrainFailed, train

    eval_ids: list[int] = []
    for job in jobs:
        ecfg = job.eval
        parent = None
        if job.train is not None:
            tcfg = job.train
            if tcfg.steps == 0 and epochs_to_steps is not None:
                tcfg = tcfg.model_copy(update={"steps": epochs_to_steps(tcfg)})
            finished, interrupted = find_equivalent_train(store, tcfg) if reuse else (None, None)
            if finished is not None:
                job.notes.append(f"reused train run {finished.id}")
                checkpoint, parent = finished.checkpoint, finished.id
            else:
                resume = str(interrupted.id) if interrupted is not None else None
                if resume is not None:
                    job.notes.append(f"resumed train run {resume}")
                try:
                    outcome = train(tcfg, store, catalog, resume=resume, progress=progress)
                except TrainFailed as exc:
                    outcome = exc.outcome  # recorded as failed with its reason; the plan goes on
                if outcome.status == "interrupted":
                    raise PlanInterrupted(f"{job.label}: training run {outcome.run_id} was interrupted at step "
                                          f"{outcome.step}; run the same command again to resume it")
                if outcome.status != "finished" or outcome.best_checkpoint is None:
                    # A diverged model is a result too (the run says why), but not one to score.
                    job.notes.append(f"training run {outcome.run_id} ended {outcome.status}: not evaluated")
                    continue
                if job.notes:
                    store.update_run(outcome.run_id, message="; ".join(job.notes))
                checkpoint, parent = str(outcome.best_checkpoint), outcome.run_id
            ecfg = ecfg.model_copy(update={"checkpoint": checkpoint})
        done = find_equivalent_eval(store, ecfg) if reuse else None
        if done is not None:
            job.notes.append(f"reused eval run {done.id}")
            run_id = done.id
        else:
            run_id = evaluate(ecfg, store, catalog, parent_id=parent, progress=progress).run_id
        eval_ids.append(run_id)
        if on_done is not None:
            on_done(job, run_id)
    return eval_ids
