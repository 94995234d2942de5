"""reproduce plans follow registry.yaml; a smoke reproduction lands in the DB and the report reads it back."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from PIL import Image

import tzbench
from tzbench.config import ConfigError
from tzbench.db import Run, Store
from tzbench.report.build import build_report
from tzbench.report.figures import char_errors
from tzbench.report.reproduce import load_budgets, plan, run_plan
from tzbench.report.tables import collect_rows


@pytest.fixture(scope="module")
def catalog():  # noqa: ANN201
    return tzbench.get_catalog()


def test_table4_plan_uses_registry_losses(catalog) -> None:  # noqa: ANN001
    jobs = {j.label: j for j in plan("table4", "synth", "smoke", catalog)}
    assert list(jobs) == ["bicubic", "srcnn", "vdsr", "srresnet", "rrdb", "edsr", "rdn", "lapsrn", "tsrn"]
    assert jobs["bicubic"].train is None
    losses = {k: j.train.loss.name for k, j in jobs.items() if j.train}
    assert losses == {"srcnn": "l2", "vdsr": "l2", "srresnet": "srresnet_loss", "rrdb": "l1", "edsr": "l1",
                      "rdn": "l1", "lapsrn": "charbonnier", "tsrn": "tsrn_loss"}
    # No VGG weights in the isolated home: the perceptual term is dropped *and said*.
    assert jobs["srresnet"].train.loss.params == {"perceptual_weight": 0.0}
    assert "perceptual" in jobs["srresnet"].notes[0]
    assert all(j.eval.judges == ["ppocr", "ppocrv2", "crnn_tz"] for j in jobs.values())  # every judge available offline
    assert jobs["tsrn"].train.steps == load_budgets()["smoke"].steps
    # TextZoom's loop for every model: Adam 1e-3 / beta1 0.5 on loss*100, gradient norm clipped at 0.25.
    optim = jobs["vdsr"].train.optim
    assert (optim.lr, optim.betas, optim.loss_scale, optim.grad_clip) == (1e-3, (0.5, 0.999), 100.0, 0.25)
    assert jobs["tsrn"].eval.tags == {"experiment": "table4", "budget": "smoke", "label": "tsrn"}


def test_cpu_budget_follows_the_cpu_recipe(catalog) -> None:  # noqa: ANN001
    jobs = {j.label: j for j in plan("table4", "wild", "cpu", catalog)}
    tsrn = jobs["tsrn"].train
    assert tsrn.recipe == "cpu" and tsrn.steps == 6000 and tsrn.data.batch_size == 16
    assert (tsrn.optim.schedule, tsrn.optim.warmup_steps, tsrn.optim.ema_decay) == ("cosine", 200, 0.999)
    assert (tsrn.optim.betas, tsrn.optim.loss_scale) == ((0.9, 0.999), 1.0)
    assert tsrn.model.params == {"stn_at_test": True} == jobs["tsrn"].eval.model.params
    assert jobs["lapsrn"].train.model.params == {"convt_init": "per_channel"}
    assert jobs["edsr"].train.steps == 300 and jobs["srcnn"].train.steps == 20000
    assert tsrn.loss.name == "tsrn_loss" and tsrn.checkpoint_every == tsrn.val_every == 500


def test_table3_and_errors(catalog) -> None:  # noqa: ANN001
    assert [j.model for j in plan("table3", "synth", "smoke", catalog)] == ["srresnet", "tsrn_srb",
                                                                         "tsrn_srb_align", "tsrn"]
    with pytest.raises(ConfigError, match="unknown budget"):
        plan("table4", "synth", "huge", catalog)
    with pytest.raises(ConfigError, match="unknown benchmark"):
        plan("table4", "nosuch", "smoke", catalog)
    with pytest.raises(ConfigError, match="--only foo"):
        plan("table4", "synth", "smoke", catalog, only=["foo"])


def test_syn_vs_real_trains_on_both_lr_sources(catalog) -> None:  # noqa: ANN001
    jobs = plan("syn-vs-real", "synth", "smoke", catalog)
    assert [j.label for j in jobs] == ["tsrn:real-lr", "tsrn:bicubic-lr"]
    assert jobs[1].train.data.params.get("lr_source") == "bicubic"
    assert "lr_source" not in jobs[1].eval.data.params  # both are evaluated on real LR


def test_word_diff_shows_deletions_and_wrong_letters() -> None:
    from tzbench.report.figures import word_diff

    assert word_diff("srictly", "strictly") == [("s", "ok"), ("t", "missing"), ("rictly", "ok")]
    assert word_diff("bonding", "banking") == [("b", "ok"), ("o", "wrong"), ("n", "ok"), ("d", "wrong"),
                                               ("ing", "ok")]
    assert word_diff("Hello!", "hello") == [("hello", "ok")]  # TextZoom's filter: case, punctuation
    assert word_diff("", "ok") == [("ok", "missing")]
    assert word_diff("cab", "c") == [("c", "ok"), ("ab", "wrong")]


def test_char_errors_marks_only_wrong_characters() -> None:
    assert char_errors("helo", "hello") == [False] * 4
    assert char_errors("hxllo", "Hello!") == [False, True, False, False, False]
    assert char_errors("ab", "") == [True, True]


def test_smoke_reproduction_to_report(catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    jobs = plan("table4", "synth", "smoke", catalog, only=["bicubic", "srcnn"])
    eval_ids = run_plan(jobs, store, catalog, progress=False)
    assert len(eval_ids) == 2
    kinds = sorted(r.kind for r in store.list_runs())
    assert kinds == ["eval", "eval", "train"]
    assert store.count(Run) == 3

    rows = collect_rows(store, "synth", "table4", "smoke")
    assert {r.label for r in rows} == {"bicubic", "srcnn"}
    out = build_report(store, catalog, "synth", tmp_path / "rep", "table4", "smoke", grid_samples=4)
    names = {p.name for p in out.files}
    # one figure and one set of columns per judge (the default judges: ppocr, ppocrv2, crnn_tz)
    assert names == {"table4.md", "table4.csv", "fig2_ppocr.png", "fig2_ppocrv2.png", "fig2_crnn_tz.png",
                     "grid_hard.png"}
    table = list(csv.DictReader(io.StringIO((tmp_path / "rep" / "table4.csv").read_text())))
    assert [r["model"] for r in table] == ["bicubic", "srcnn"]
    bic = next(r for r in rows if r.model == "bicubic")
    for judge in ("ppocr", "ppocrv2", "crnn_tz"):
        assert float(table[0][f"{judge} avg"]) == pytest.approx(bic.average(judge) * 100)
        assert float(table[0][f"{judge} Δ vs bicubic"]) == 0.0
    grid = Image.open(tmp_path / "rep" / "grid_hard.png")
    # bicubic, srcnn and HR columns (the bicubic row is the LR column: no duplicate); 4 rows
    assert grid.width == 6 + 3 * (256 + 6) and grid.height > 4 * (64 + 14)
    with pytest.raises(ConfigError, match="no finished"):
        build_report(store, catalog, "synth", tmp_path / "rep2", "table3", "smoke")


def test_rerun_reuses_the_store_and_resumes_interrupted_training(catalog, tmp_path: Path,  # noqa: ANN001
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    first = run_plan(plan("table4", "synth", "smoke", catalog, only=["srcnn"]), store, catalog, progress=False)
    assert store.count(Run) == 2
    # The same command again: nothing is redone.
    jobs = plan("table4", "synth", "smoke", catalog, only=["srcnn"])
    assert run_plan(jobs, store, catalog, progress=False) == first
    assert store.count(Run) == 2
    assert any("reused eval run" in n for n in jobs[0].notes)
    # Another experiment with the same training (tags aside) reuses it but gets its own eval.
    train_run = next(r for r in store.list_runs(kind="train"))
    other = plan("table4", "synth", "smoke", catalog, only=["srcnn"])
    other[0].train = other[0].train.model_copy(update={"tags": {"experiment": "x"}})
    other[0].eval = other[0].eval.model_copy(update={"tags": {"experiment": "x"}})
    (new_eval,) = run_plan(other, store, catalog, progress=False)
    assert new_eval not in first and store.get_run(new_eval).parent_id == train_run.id
    assert len(store.list_runs(kind="train")) == 1
    # A different recipe is a different run.
    changed = plan("table4", "synth", "smoke", catalog, only=["srcnn"])
    changed[0].train = changed[0].train.model_copy(update={"seed": 1})
    run_plan(changed, store, catalog, progress=False)
    assert len(store.list_runs(kind="train")) == 2
    # A training stopped half-way (as SIGINT leaves it: status interrupted, state saved at step 2)
    # is resumed under the same run id, not restarted.
    from tzbench.runner.train import train

    half = plan("table4", "synth", "smoke", catalog, only=["srcnn"])[0].train.model_copy(update={"seed": 2})
    stopped = train(half.model_copy(update={"steps": 2}), store, catalog, progress=False)
    store.update_run(stopped.run_id, status="interrupted",
                     config={**store.get_run(stopped.run_id).config, "steps": half.steps})
    again = plan("table4", "synth", "smoke", catalog, only=["srcnn"])
    again[0].train = half
    run_plan(again, store, catalog, progress=False)
    assert f"resumed train run {stopped.run_id}" in again[0].notes
    resumed = store.get_run(stopped.run_id)
    assert resumed.status == "finished" and resumed.config["resumes"][0]["step"] == 2
    assert len(store.list_runs(kind="train")) == 3
    # --fresh redoes the work.
    run_plan(plan("table4", "synth", "smoke", catalog, only=["srcnn"]), store, catalog, progress=False, reuse=False)
    assert len(store.list_runs(kind="train")) == 4


def test_epochs_become_steps_over_the_train_split(catalog) -> None:  # noqa: ANN001
    from tzbench.report.reproduce import steps_for_epochs

    (job,) = plan("table4", "synth", "paper", catalog, only=["srcnn"])
    assert job.train.steps == 0 and load_budgets()["paper"].epochs == 500
    n = len(catalog.create("datasets", "synth", {}).load("train", None))
    assert steps_for_epochs(job.train, 2, catalog) == -(-2 * n // job.train.data.batch_size)


def test_a_training_that_differs_only_in_its_judges_is_reused(tmp_path: Path) -> None:
    """A judge added to registry.yaml's defaults re-evaluates, it does not retrain (the judges only
    read a training's final eval, which reproduce runs as its own job)."""
    from tzbench.config import TrainConfig
    from tzbench.report.reproduce import find_equivalent_train

    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    old = TrainConfig.model_validate({"model": {"name": "srcnn"}, "judges": ["ppocr"]})
    ckpt = tmp_path / "best.safetensors"
    ckpt.write_bytes(b"x")
    rid = store.start_run(kind="train", sr_model="srcnn", benchmark="synth", protocol="clean",
                          config=old.model_dump(mode="json"))
    store.update_run(rid, checkpoint=str(ckpt))
    store.finish_run(rid, "finished")
    new = old.model_copy(update={"judges": ["ppocr", "ppocrv2", "crnn_tz"]})
    assert find_equivalent_train(store, new)[0].id == rid
    assert find_equivalent_train(store, old.model_copy(update={"steps": 7}))[0] is None  # what is trained counts


def test_a_shipped_weights_eval_names_its_weights_in_the_report(tmp_path: Path) -> None:
    """`tzbench eval M --pretrained` has no training run in the store: the row's note names the weights."""
    store = Store(f"sqlite:///{tmp_path / 'tz.db'}")
    tags = {"experiment": "table4", "budget": "cpu"}
    for model, extra in (("srcnn", {"pretrained": "wild-cpu"}), ("bicubic", {})):
        rid = store.start_run(kind="eval", sr_model=model, benchmark="wild", protocol="clean",
                              config={"model": {"name": model}, "tags": {**tags, **extra}})
        store.finish_run(rid, "finished")
    notes = {r.label: r.notes for r in collect_rows(store, "wild", "table4", "cpu")}
    assert notes == {"srcnn": "shipped weights srcnn:wild-cpu (`--pretrained`)", "bicubic": ""}
