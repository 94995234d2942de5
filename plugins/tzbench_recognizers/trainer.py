"""``train_recognizer``: one judge training run from config to recorded, test-scored checkpoints.

An orchestrator over typed parts: the judge and its objective (:mod:`.objective`), the data,
the loop (:mod:`.loop`), the checkpoints (:class:`~.checkpoints.JudgeCheckpointWriter`), the
store (:class:`~.run_record.RecognizerRunRecord`) and the test scoring (:mod:`.evaluation`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset, Subset

from tzbench_recognizers.checkpoints import JudgeCheckpointWriter, load_recognizer_checkpoint
from tzbench_recognizers.common import DeeplySupervised, TrainableRecognizer, as_ctc_student
from tzbench_recognizers.ctc import FrameTeacher
from tzbench_recognizers.evaluation import score_test_sets, scores_line
from tzbench_recognizers.init import kaiming_init
from tzbench_recognizers.loop import LoopState, TrainingLoop, calibration_batches
from tzbench_recognizers.objective import StepObjective, is_trainable
from tzbench_recognizers.run_record import RecognizerRunRecord, provider_of
from tzbench_recognizers.train_config import RecognizerTrainConfig, RecognizerTrainOutcome

if TYPE_CHECKING:
    from tzbench.catalog import Catalog
    from tzbench.db.store import Store

__all__ = ["train_recognizer"]


@dataclass
class _Judge:
    """The judge being trained, built from the config."""

    rec: TrainableRecognizer
    params: dict[str, Any]  # validated, as constructed
    saved_params: dict[str, Any]  # what a checkpoint needs to rebuild it: no machine-specific params
    plugin: str
    teacher: FrameTeacher | None


@dataclass
class _Data:
    """The datasets of the run: providers (for the test splits), mixed train and capped val sets."""

    providers: dict[str, Any]
    train: Dataset
    val: Dataset


def _build_judge(cfg: RecognizerTrainConfig, catalog: Catalog, device: torch.device) -> _Judge:
    from tzbench.runner.context import RunError

    name = cfg.judge.name
    entry = catalog.entry("recognizers", name)
    params = catalog.validate_params("recognizers", name, {**cfg.judge.params, "device": str(device)}).model_dump()
    rec = catalog.create("recognizers", name, params)
    if not is_trainable(rec) or not hasattr(rec, "net"):
        raise RunError(f"judge {name!r} cannot be trained here (it has no network/training loss)")
    if cfg.init == "kaiming" and not params.get("weights"):
        kaiming_init(rec.net)
    teacher = None
    if cfg.distill:
        student = as_ctc_student(rec)
        if student is None:
            raise RunError(f"distillation needs a CTC student; {name!r} has no per-frame logits")
        teacher = FrameTeacher(catalog.create("recognizers", cfg.distill, {}), student.charset)
    saved = {k: v for k, v in params.items() if k not in ("weights", "device", "batch_size")}
    return _Judge(rec, params, saved, entry.plugin, teacher)


def _load_data(cfg: RecognizerTrainConfig, catalog: Catalog) -> _Data:
    from tzbench.runner.context import RunError

    providers = {d: catalog.create("datasets", d, cfg.data_params.get(d, {})) for d in cfg.data}
    unknown = set(cfg.data_params) - set(cfg.data)
    if unknown:
        raise RunError(f"data_params names datasets that are not trained on: {sorted(unknown)}")
    train_ds = ConcatDataset([p.load("train") for p in providers.values()])
    val_parts = [v for v in (p.load("val") for p in providers.values()) if len(v)]
    if not val_parts:
        raise RunError(f"the val splits of {cfg.data} are empty: model selection needs validation samples")
    val_ds: Dataset = ConcatDataset(val_parts)
    if len(val_ds) > cfg.val_max_samples:
        val_ds = Subset(val_ds, torch.linspace(0, len(val_ds) - 1, cfg.val_max_samples).long().tolist())
    return _Data(providers, train_ds, val_ds)


def _objective(cfg: RecognizerTrainConfig, judge: _Judge,
               device: torch.device) -> tuple[StepObjective, list[nn.Parameter]]:
    """The step loss and the parameters it trains (the judge's, and the deep-supervision head's)."""
    rec = judge.rec
    aux: nn.Module | None = None
    if cfg.aux_weight > 0 and isinstance(rec, DeeplySupervised):
        aux = nn.Linear(rec.feature_size, len(rec.charset) + 1).to(device)
    trainable = [p for p in rec.net.parameters() if p.requires_grad]
    trainable += list(aux.parameters()) if aux is not None else []
    return StepObjective(rec, judge.teacher, aux, cfg.distill_weight, cfg.aux_weight), trainable


def _finish(loop: TrainingLoop, data: _Data) -> dict[str, dict[str, tuple[float, int]]]:
    """After the loop: validate a state left between evaluations, write ``last``, time and test scores."""
    cfg, st, rec, record = loop.cfg, loop.state, loop.rec, loop.record
    rec.net.eval()
    if st.step > 0 and (st.step % cfg.val_every != 0 and st.step != cfg.steps):
        loop.validate()  # stopped between evaluations (time budget, interruption): score the final state too
    loop.checkpoints.save("last", rec.net, st.step, {"seconds": st.seconds})
    record.training_time(st.seconds, st.step)
    best_file = loop.checkpoints.path("best")
    test: dict[str, dict[str, tuple[float, int]]] = {}
    if best_file.exists() and st.status != "failed":
        from tzbench.weights import sha256_file

        load_recognizer_checkpoint(rec, best_file)
        for dname, provider in data.providers.items():
            test[dname] = score_test_sets(rec, provider, cfg.test_subsets, cfg.eval_batch_size,
                                          cfg.test_max_samples)
            loop.say(scores_line(dname, test[dname]))
        record.test(test, sha256_file(best_file))
    bad = sum(len(getattr(p, "bad_samples", []) or []) for p in data.providers.values())
    record.finish(st.status, st.message, best_file if best_file.exists() else None, bad)
    return test


def _outcome(loop: TrainingLoop, st: LoopState,
             test: dict[str, dict[str, tuple[float, int]]]) -> RecognizerTrainOutcome:
    best = loop.checkpoints.path("best")
    flat = {d: {k: v for k, (v, _) in r.items()} for d, r in test.items()}
    return RecognizerTrainOutcome(loop.record.run_id, loop.checkpoints.run_dir, best if best.exists() else None,
                                  loop.checkpoints.path("last"), st.best_val, st.step, st.seconds, st.status, flat)


def train_recognizer(
    cfg: RecognizerTrainConfig,
    store: Store,
    catalog: Catalog,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> RecognizerTrainOutcome:
    """Train judge ``cfg.judge`` on the train splits of ``cfg.data``; record and checkpoint it.

    Selection: the checkpoint with the best validation accuracy (val splits of the same
    datasets) is ``best``; the final state is ``last``. At the end the best checkpoint is read
    back and scored on every dataset's test split, HR and bicubic LR, and those numbers are
    recorded as the run's final results. The run folder gets ``train.log`` and ``metrics.jsonl``
    as an SR training's (tzbench.runner.records); progress is a bar on a terminal and plain lines
    otherwise (or with ``progress=False``). ``log`` (a callable taking a string) also receives the
    validation and test lines.
    """
    from tzbench.runner.checkpoint import new_run_dir
    from tzbench.runner.context import RunError, pick_device, seed_everything
    from tzbench.runner.records import TrainRecords

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    judge = _build_judge(cfg, catalog, device)
    rec, name = judge.rec, cfg.judge.name
    n_params = sum(p.numel() for p in rec.net.parameters())
    data = _load_data(cfg, catalog)
    objective, trainable = _objective(cfg, judge, device)
    opt = torch.optim.Adam(trainable, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    record = RecognizerRunRecord.start(store, cfg, provider_of(judge.plugin, catalog), n_params, device)
    run_dir = new_run_dir(cfg.out_dir, f"{record.run_id:05d}-recognizer-{name}")
    config = cfg.model_dump(mode="json")
    checkpoints = JudgeCheckpointWriter(run_dir, name, judge.saved_params, getattr(rec, "charset", ""),
                                        record.run_id, cfg.model_dump(mode="json"), device)
    record.set_checkpoint(checkpoints.path("best"))
    records = TrainRecords(run_dir, f"train-recognizer {name}", cfg.steps, 0, cfg.log_every, progress)
    records.start({"run_id": record.run_id, "run_dir": str(run_dir), "model": name, "steps": cfg.steps,
                   "start_step": 0, "config": config},
                  f"tzbench train-recognizer {name}: run {record.run_id}, {cfg.steps} steps, folder {run_dir} "
                  f"(device {device})")

    def say(line: str) -> None:
        records.say(line)
        if log is not None:
            log(line)

    loop = TrainingLoop(cfg, rec, objective, opt, trainable, data.train, data.val,
                        calibration_batches(data.train, cfg, device), device, record, checkpoints, records, say)
    st = loop.run()
    test = _finish(loop, data)
    records.close(f"run {record.run_id} {st.status} at step {st.step} in {st.seconds:.0f} s"
                  + (f"; {st.message}" if st.message else ""))
    if st.status == "failed":
        raise RunError(st.message or "training failed")
    return _outcome(loop, st, test)
