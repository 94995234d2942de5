"""ASTER's early-stopping beam search against the official always-100-steps search on real crops.

    python examples/aster_early_stop.py --images 672 --threads 2                  # every test crop
    python examples/aster_early_stop.py --images 328 --level-shift 1 --threads 2  # 328 more images

ASTER ships no offline weights (the released ``demo.pth.tar`` is not here), and under the
reference's deterministic rule-B weights its beams never end, so no search could stop early.
To decode like a trained reader (beams ending after a word-like number of characters) the
decoder of the rule-B network is fitted here for 80 teacher-forced Adam steps on the
``wild`` train split's HR crops, with the rectifier and encoder frozen (``--fit-steps 0``
keeps plain rule B). Then both paths read ``--images`` crops of the ``wild`` test split
(672 crops, each at one of easy/medium/hard, see :func:`wild_images`; bicubic x2 of the made
LR: what a judge reads for the bicubic baseline) in batches of 64, and the script prints whether every string, length and
top-beam score agree, and the images/s of each path, measured batch by batch side by side.
Exit status 1 when any string differs. docs/performance.md quotes its output.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tzbench.api import get_catalog
from tzbench.data.folder import IGNORE_LABEL, WildSource
from tzbench.text import str_filt
from tzbench_recognizers.aster.judge import get_str_list
from tzbench_recognizers.aster.net import ASTER
from tzbench_recognizers.aster.params import EOS, PADDING, UNKNOWN, VOC_ALL

# The reference's rule-B weights are a test helper (tests/reference_cases.py), not part of the
# installed package: this example runs from a source checkout, so it reads them from there.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reference_cases as reference

TPS_KEEP = ("tps.inverse_kernel", "tps.padding_matrix", "tps.target_coordinate_repr", "tps.target_control_points")


def rule_b_aster() -> ASTER:
    """ASTER under the reference's rule B (README section 2), in eval mode."""
    net = ASTER()
    reference.apply_rule_b(net, keep_keys=TPS_KEEP + ("stn_head.stn_fc2.bias",),
                           classifier_keys=("decoder.decoder.fc.weight",))
    return net.eval()


def wild_images(split: str, n: int, lr: bool, level_shift: int = 0) -> tuple[torch.Tensor, list[str]]:
    """``n`` crops of the wild ``split`` spread evenly over it: HR, or bicubic x2 of the made LR, in [0, 1].

    Test crop ``i`` (of 672) is degraded at easy, medium or hard by ``(i + level_shift) % 3``, so
    runs with shifts 0, 1, 2 read disjoint images. Reads only the chosen crops (the dataset's
    ``load`` would decode and cache the whole split first).
    """
    provider = get_catalog().create("datasets", "wild", {})
    crops = [c for c in provider.split_crops()[split] if c.label not in ("", IGNORE_LABEL)]
    idx = torch.linspace(0, len(crops) - 1, min(n, len(crops))).round().long().tolist()
    levels = ("easy", "medium", "hard") if split == "test" else (None,)
    seed = provider.params.seed
    pairs = [WildSource([crops[i]], levels[(i + level_shift) % len(levels)], seed).produce(0) for i in idx]
    arrays = np.stack([p.lr if lr else p.hr for p in pairs])
    images = torch.from_numpy(arrays).permute(0, 3, 1, 2).float() / 255
    if lr:
        images = F.interpolate(images, size=(32, 128), mode="bicubic", align_corners=False).clamp(0, 1)
    return images, [p.label for p in pairs]


def _targets(labels: list[str], max_len: int) -> tuple[torch.Tensor, list[int]]:
    index = {c: i for i, c in enumerate(VOC_ALL)}
    rows = [[index.get(c, UNKNOWN) for c in str_filt(w, "all")][: max_len - 1] + [EOS] for w in labels]
    lengths = [len(r) for r in rows]
    target = torch.full((len(rows), max(lengths)), PADDING, dtype=torch.long)
    for i, r in enumerate(rows):
        target[i, : len(r)] = torch.tensor(r)
    return target, lengths


def fit_decoder(net: ASTER, images: torch.Tensor, labels: list[str], steps: int, batch: int = 64,
                seed: int = 0, log_every: int = 20) -> ASTER:
    """Teacher-force the decoder on ``images``/``labels`` for ``steps`` Adam steps (encoder frozen)."""
    if steps <= 0:
        return net.eval()
    with torch.no_grad():
        feats = torch.cat([net.encoder(net.rectify(images[i:i + 64] * 2 - 1)[0]) for i in range(0, len(images), 64)])
    target, lengths = _targets(labels, net.max_len_labels)
    params = list(net.decoder.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    net.decoder.train()
    for step in range(1, steps + 1):
        pick = torch.randint(0, len(feats), (batch,), generator=g)
        lens = [lengths[i] for i in pick.tolist()]
        tgt = target[pick, : max(lens)]
        loss = net.rec_crit(net.decoder(feats[pick].contiguous(), tgt, lens), tgt, lens)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        if log_every and (step % log_every == 0 or step == 1):
            print(f"fit step {step}/{steps}: loss {loss.item():.2f}", flush=True)
    return net.eval()


def fitted_aster(fit_steps: int = 80, fit_images: int = 640) -> ASTER:
    """Rule-B ASTER whose decoder was fitted on the wild train split (see the module docstring)."""
    net = rule_b_aster()
    if fit_steps > 0:
        images, labels = wild_images("train", fit_images, lr=False)
        fit_decoder(net, images, labels, fit_steps)
    return net


def compare(net: ASTER, images: torch.Tensor, batch: int = 64) -> dict[str, float]:
    """Read ``images`` with both searches batch by batch; counts, score gap and timings."""
    agree = strings_agree = 0
    max_gap = 0.0
    t_ref = t_fast = 0.0
    steps: list[int] = []
    lengths: list[int] = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = images[start:start + batch] * 2 - 1
            t0 = time.perf_counter()
            feats = net.encoder(net.rectify(x)[0]).contiguous()
            t_enc = time.perf_counter() - t0
            t0 = time.perf_counter()
            full = net.decoder.beam_search_full(feats, net.beam_width, net.eos)
            t1 = time.perf_counter()
            top = net.decoder.beam_search_early_stop(feats, net.beam_width, net.eos)
            t2 = time.perf_counter()
            t_ref += t_enc + (t1 - t0)
            t_fast += t_enc + (t2 - t1)
            ref_strings, fast_strings = get_str_list(full.beams[:, 0]), get_str_list(top.ids)
            strings_agree += sum(a == b for a, b in zip(ref_strings, fast_strings))
            for b in range(x.size(0)):
                n = int(full.lengths[b, 0])
                agree += int(n == int(top.length[b]) and torch.equal(full.beams[b, 0, :n], top.ids[b, :n]))
            max_gap = max(max_gap, float((full.scores[:, 0] - top.score).abs().max()))
            steps.append(top.steps)
            lengths += full.lengths[:, 0].tolist()
            print(f"images {start + x.size(0)}/{len(images)}: strings equal {strings_agree}, "
                  f"reference {t1 - t0 + t_enc:.1f} s, early stop {t2 - t1 + t_enc:.1f} s ({top.steps} steps)",
                  flush=True)
    return {"images": len(images), "strings_equal": strings_agree, "beams_equal": agree, "max_score_gap": max_gap,
            "reference_images_per_s": len(images) / t_ref, "early_stop_images_per_s": len(images) / t_fast,
            "speedup": t_ref / t_fast, "mean_steps": sum(steps) / len(steps),
            "ended_beams": sum(n < net.max_len_labels for n in lengths)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--fit-steps", type=int, default=80, help="decoder fitting steps (0: plain rule B)")
    ap.add_argument("--fit-images", type=int, default=640, help="train crops the decoder is fitted on")
    ap.add_argument("--level-shift", type=int, default=0, help="degradation of test crop i: (i + shift) %% 3")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = fitted_aster(args.fit_steps, args.fit_images)
    images, _ = wild_images("test", args.images, lr=True, level_shift=args.level_shift)
    res = compare(net, images)
    print(f"{res['images']} wild test images, {torch.get_num_threads()} threads: strings equal "
          f"{res['strings_equal']}/{res['images']}, top beams equal (ids through EOS, length) "
          f"{res['beams_equal']}/{res['images']}, max top-score gap {res['max_score_gap']:.2e}; "
          f"{res['ended_beams']} top beams end before step 100; decoder steps per batch {res['mean_steps']:.1f}")
    print(f"images/s incl. rectifier+encoder: reference {res['reference_images_per_s']:.2f}, early stop "
          f"{res['early_stop_images_per_s']:.2f}, ratio {res['speedup']:.1f}x")
    raise SystemExit(0 if res["strings_equal"] == res["images"] == res["beams_equal"] else 1)


if __name__ == "__main__":
    main()
