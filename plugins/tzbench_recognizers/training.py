"""Training text recognizers (judges) here: ``tzbench train-recognizer crnn --data synth,wild``.

The trained network is the judge's own ``net`` (the official key layout), fed through the
judge's own :meth:`preprocess`, so a checkpoint written here is read by the judge exactly as
it was trained. Losses:

* ``crnn`` (and any CTC judge): CTC over the per-frame logits, blank = class 0;
* ``moran``: teacher-forced cross-entropy of both attention decoders (L2R on the word + ``$``,
  R2L on the reversed word + ``$``), the rectifier run as at inference;
* ``aster``: the official teacher-forced ``SequenceCrossEntropyLoss`` over voc ``all`` + EOS;
* a third-party judge is trainable when it has ``training_loss(images, labels) -> Tensor``
  (``vitstr`` does).

Runs are recorded in the store like SR runs (``kind="train-recognizer"``, the judge name in
``sr_model``, the data in ``benchmark``) with the loss and validation accuracy per evaluation
step and, at the end, the best checkpoint's word accuracy on each dataset's test split, on HR
images and on bicubic-upsampled LR images (TextZoom's rule: lower-case ``[0-9a-z]``, exact).

Checkpoints are tzbench checkpoints (safetensors + JSON, atomic) with ``kind: "recognizer"``;
judges accept them through their ``weights=`` param (see :func:`read_recognizer_weights`).
"""

from __future__ import annotations

import signal
import time
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset, Subset

from tzbench.data import collate
from tzbench_recognizers.augment import augment_batch, bicubic_up
from tzbench_recognizers.common import DeeplySupervised, as_ctc_student
from tzbench_recognizers.bn import recalibrate_bn
from tzbench_recognizers.init import kaiming_init
from tzbench_recognizers.schedule import schedule_factor, shuffled_batches
from tzbench_recognizers.evaluation import AccuracyReport, read_accuracy, scores_line, score_test_sets
from tzbench_recognizers.train_config import JudgeRef, RecognizerTrainConfig, RecognizerTrainOutcome
from tzbench_recognizers.objective import StepObjective, is_trainable, recognizer_loss
from tzbench_recognizers.ctc import FrameTeacher, ctc_loss_from_logits, ctc_targets, distillation_loss

__all__ = [
    "JudgeRef",
    "RecognizerTrainConfig",
    "RecognizerTrainOutcome",
    "AccuracyReport",
    "recognizer_loss",
    "is_trainable",
    "augment_batch",
    "bicubic_up",
    "read_accuracy",
    "schedule_factor",
    "kaiming_init",
    "recalibrate_bn",
    "train_recognizer",
    "ctc_targets",
    "ctc_loss_from_logits",
    "FrameTeacher",
    "distillation_loss",
]

CHECKPOINT_FORMAT = "tzbench-checkpoint-1"
CHECKPOINT_KIND = "recognizer"


# --------------------------------------------------------------------------- the run


def _dist_of(plugin_name: str, catalog: Any) -> str:
    for info in getattr(getattr(catalog.pm, "tzbench_loaded", None), "infos", []):
        if info.name == plugin_name:
            return f"{info.dist} {info.version}"
    return plugin_name


def train_recognizer(
    cfg: RecognizerTrainConfig,
    store: Any,
    catalog: Any,
    progress: bool = True,
    log: Any = None,
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
    from tzbench.db.store import ResultRow
    from tzbench.runner.checkpoint import checkpoint_paths, new_run_dir, save_checkpoint
    from tzbench.weights import sha256_file
    from tzbench.runner.context import RunError, pick_device, provenance, seed_everything
    from tzbench.runner.records import TrainRecords

    user_log = log or (lambda _msg: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    seed_everything(cfg.seed)
    name = cfg.judge.name
    entry = catalog.entry("recognizers", name)
    judge_params = catalog.validate_params("recognizers", name, {**cfg.judge.params, "device": str(device)}).model_dump()
    rec = catalog.create("recognizers", name, judge_params)
    if not is_trainable(rec) or not hasattr(rec, "net"):
        raise RunError(f"judge {name!r} cannot be trained here (it has no network/training loss)")
    net = rec.net
    if cfg.init == "kaiming" and not judge_params.get("weights"):
        kaiming_init(net)
    n_params = sum(p.numel() for p in net.parameters())
    teacher: FrameTeacher | None = None
    if cfg.distill:
        if as_ctc_student(rec) is None:
            raise RunError(f"distillation needs a CTC student; {name!r} has no per-frame logits")
        teacher = FrameTeacher(catalog.create("recognizers", cfg.distill, {}), rec.charset)
    # What a checkpoint needs to rebuild the judge: its params without machine-specific ones.
    saved_params = {k: v for k, v in judge_params.items() if k not in ("weights", "device", "batch_size")}

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

    aux: torch.nn.Module | None = None
    if cfg.aux_weight > 0 and isinstance(rec, DeeplySupervised):
        aux = torch.nn.Linear(rec.feature_size, len(rec.charset) + 1).to(device)
    trainable = [p for p in net.parameters() if p.requires_grad] + (list(aux.parameters()) if aux is not None else [])
    objective = StepObjective(rec, teacher, aux, cfg.distill_weight, cfg.aux_weight)
    opt = torch.optim.Adam(trainable, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    run_id = store.start_run(
        kind="train-recognizer", sr_model=name, provider=_dist_of(entry.plugin, catalog),
        benchmark=",".join(cfg.data), protocol="clean", comparable=False, config=cfg.model_dump(mode="json"),
        n_params=n_params, seed=cfg.seed, **provenance(device),
    )
    run_dir = new_run_dir(cfg.out_dir, f"{run_id:05d}-recognizer-{name}")
    best_path, last_path = run_dir / "best", run_dir / "last"
    store.update_run(run_id, checkpoint=str(checkpoint_paths(best_path)[0]))
    records = TrainRecords(run_dir, f"train-recognizer {name}", cfg.steps, 0, cfg.log_every, progress)
    records.start({"run_id": run_id, "run_dir": str(run_dir), "model": name, "steps": cfg.steps, "start_step": 0,
                   "config": cfg.model_dump(mode="json")},
                  f"tzbench train-recognizer {name}: run {run_id}, {cfg.steps} steps, folder {run_dir} (device {device})")

    def say(line: str) -> None:
        records.say(line)
        user_log(line)

    def meta(step: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "kind": CHECKPOINT_KIND, "recognizer": name, "params": saved_params,
            "charset": getattr(rec, "charset", ""), "step": step, "run_id": run_id,
            "data": cfg.data, "config": cfg.model_dump(mode="json"), **provenance(device), **(extra or {}),
        }

    calib: list[tuple[Tensor, list[str]]] = []
    calib_gen = torch.Generator().manual_seed(cfg.seed + 1)
    for _ in range(cfg.bn_batches):
        idx = torch.randint(0, len(train_ds), (min(cfg.batch_size, len(train_ds)),), generator=calib_gen).tolist()
        cb = collate([train_ds[i] for i in idx])
        calib.append((cb["hr"][:, :3].to(device), list(cb["label"])))
    gen = torch.Generator().manual_seed(cfg.seed)
    batches = shuffled_batches(len(train_ds), cfg.batch_size, cfg.seed)
    budget = cfg.max_minutes * 60 if cfg.max_minutes else None
    interrupted = {"flag": False}
    prev_handler: Any = None
    try:
        prev_handler = signal.signal(signal.SIGTERM, lambda *_: interrupted.__setitem__("flag", True))
    except ValueError:  # not the main thread
        prev_handler = None

    best_val: float | None = None
    step = 0
    status, message = "finished", None
    t0 = time.perf_counter()
    loss_avg: float | None = None
    net.train()
    try:
        with records:
            while step < cfg.steps:
                elapsed = time.perf_counter() - t0
                if budget is not None and elapsed >= budget:
                    message = f"stopped by the {cfg.max_minutes:g}-minute budget at step {step}"
                    break
                if interrupted["flag"]:
                    raise KeyboardInterrupt
                frac = max(step / max(1, cfg.steps), elapsed / budget if budget else 0.0)
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * schedule_factor(frac, cfg.warmup, cfg.schedule)
                batch = collate([train_ds[i] for i in next(batches)])
                images = batch["hr"][:, :3]
                if cfg.lr_fraction > 0:
                    use_lr = torch.rand(images.shape[0], generator=gen) < cfg.lr_fraction
                    if bool(use_lr.any()):
                        up = bicubic_up(batch["lr"][:, :3], tuple(images.shape[-2:]))
                        images = torch.where(use_lr[:, None, None, None], up, images)
                images = images.to(device)
                if cfg.augment:
                    images = augment_batch(images, gen)
                labels = list(batch["label"])
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                    loss = objective(images, labels)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at step {step}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
                opt.step()
                step += 1
                records.step(step, float(loss.item()), {}, float(opt.param_groups[0]["lr"]))
                # The DB's train loss: the mean over the last log_every steps, as for SR runs.
                loss_avg = records.window.mean("loss")
                if step % cfg.val_every == 0 or step == cfg.steps:
                    recalibrate_bn(rec, calib)
                    best_val = _validate(rec, val_ds, cfg, step, loss_avg, best_val, run_id, store, best_path, meta,
                                         save_checkpoint, say, t0, records)
                    net.train()
    except KeyboardInterrupt:
        status, message = "interrupted", f"interrupted at step {step}"
    except FloatingPointError as exc:
        status, message = "failed", str(exc)
    except BaseException as exc:
        store.finish_run(run_id, "failed", message=f"{type(exc).__name__}: {exc}")
        records.close(f"run {run_id} failed: {type(exc).__name__}: {exc}")
        raise
    finally:
        if prev_handler is not None:
            signal.signal(signal.SIGTERM, prev_handler)
    seconds = time.perf_counter() - t0
    net.eval()
    if step > 0 and (step % cfg.val_every != 0 and step != cfg.steps):
        # stopped between evaluations (time budget, interruption): score the final state too
        recalibrate_bn(rec, calib)
        best_val = _validate(rec, val_ds, cfg, step, loss_avg, best_val, run_id, store, best_path, meta,
                             save_checkpoint, say, t0, records)
    save_checkpoint(last_path, net.state_dict(), meta(step, {"seconds": seconds}))
    store.add_results(run_id, [ResultRow("train", name, "seconds", seconds, -1, step)])
    best_file = checkpoint_paths(best_path)[0]
    test: dict[str, dict[str, float]] = {}
    if best_file.exists() and status != "failed":
        from tzbench_recognizers.checkpoints import load_recognizer_checkpoint

        load_recognizer_checkpoint(rec, best_file)
        rows = []
        for dname, provider in providers.items():
            test[dname] = res = score_test_sets(rec, provider, cfg.test_subsets, cfg.eval_batch_size, cfg.test_max_samples)
            say(scores_line(dname, res))
            for key, (value, n) in res.items():
                source, _, subset = key.partition(":")
                metric = "accuracy_hr" if source == "hr" else "accuracy_lr_bicubic"
                rows.append(ResultRow(f"{dname}:{subset}", name, metric, value, -1, n))
        store.add_results(run_id, rows)
        store.update_run(run_id, checkpoint_sha256=sha256_file(best_file))
    store.finish_run(run_id, status, message=message, checkpoint=str(best_file) if best_file.exists() else None,
                     bad_samples=sum(len(getattr(p, "bad_samples", []) or []) for p in providers.values()))
    records.close(f"run {run_id} {status} at step {step} in {seconds:.0f} s" + (f"; {message}" if message else ""))
    if status == "failed":
        raise RunError(message or "training failed")
    flat = {d: {k: v for k, (v, _) in r.items()} for d, r in test.items()}
    return RecognizerTrainOutcome(run_id, run_dir, best_file if best_file.exists() else None,
                                  checkpoint_paths(last_path)[0], best_val, step, seconds, status, flat)


def _validate(rec, val_ds, cfg, step, loss_avg, best_val, run_id, store, best_path, meta, save_checkpoint, say, t0,  # noqa: ANN001, ANN202
              records):
    from tzbench.db.store import ResultRow

    rep = read_accuracy(rec, val_ds, cfg.eval_batch_size, "hr", keep_examples=4)
    rows = [ResultRow("val", cfg.judge.name, "accuracy", rep.accuracy, step, rep.n)]
    if loss_avg is not None:
        rows.append(ResultRow("train", cfg.judge.name, "loss", loss_avg, step, cfg.batch_size))
    store.add_results(run_id, rows)
    improved = best_val is None or rep.accuracy > best_val
    if improved:
        best_val = rep.accuracy
        save_checkpoint(best_path, rec.net.state_dict(), meta(step, {"val_accuracy": rep.accuracy}))
    line = (f"step {step} t={time.perf_counter() - t0:.0f}s loss={loss_avg if loss_avg is not None else float('nan'):.3f} "
            f"val acc={rep.accuracy:.4f} ({rep.correct}/{rep.n}){' *' if improved else ''} e.g. {rep.examples}")
    records.validation(step, {"val": {"accuracy": rep.accuracy, "n": float(rep.n)}}, "accuracy", rep.accuracy,
                       improved, announce=False)
    say(line)
    return best_val

