"""How much room each judge leaves super-resolution on a benchmark: its accuracy on the HR
crops and on the bicubic x2 of the LR, per test subset.

    python examples/judge_headroom.py --data wild --judge ppocr --judge ppocrv2

The bicubic row equals what `tzbench eval bicubic` records; the HR row is the ceiling no SR
model can pass (docs/judges.md quotes both).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from tzbench.api import create_recognizer, get_catalog
from tzbench.metrics import word_accuracy
from tzbench.runner.context import build_dataset, fetch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="wild")
    ap.add_argument("--judge", action="append", default=None)
    args = ap.parse_args()
    provider, _ = build_dataset(get_catalog(), args.data, {}, 3)
    judges = {name: create_recognizer(name) for name in (args.judge or ["ppocr", "ppocrv2"])}
    for subset in ("easy", "medium", "hard"):
        ds = provider.load("test", subset)
        hits: dict[tuple[str, str], list[bool]] = {}
        for start in range(0, len(ds), 64):
            batch = fetch(ds, torch.arange(start, min(len(ds), start + 64)))
            up = F.interpolate(batch["lr"], size=batch["hr"].shape[-2:], mode="bicubic", align_corners=False)
            for name, judge in judges.items():
                for kind, images in (("hr", batch["hr"]), ("bicubic", up.clamp(0, 1))):
                    hits.setdefault((name, kind), []).extend(word_accuracy(judge.recognize(images), batch["label"]))
        cells = ", ".join(f"{n}/{k} {100 * sum(v) / len(v):.1f}" for (n, k), v in hits.items())
        print(f"{subset} ({len(ds)} pairs): {cells}", flush=True)


if __name__ == "__main__":
    main()
