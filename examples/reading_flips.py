"""Which words an SR model makes a judge read right or wrong, compared with bicubic.

    python examples/reading_flips.py --checkpoint runs/00001-tsrn/best.safetensors --model tsrn \
        --data wild --judge ppocr --judge ppocrv2 --judge crnn_tz

Per judge and test subset: accuracy on bicubic x2 and on the model's output, the words only
bicubic reads right ("lost") and only the model reads right ("won"), and for the lost words
how the model's reading differs from the label (edit operations at the first, a middle or the
last character). docs/results.md uses it to tell letter substitutions (a stroke sharpened
into another letter) from cropped borders (deletions at the ends).
"""

from __future__ import annotations

import argparse
import difflib
from collections import Counter

import torch
import torch.nn.functional as F

from tzbench.api import create_recognizer, get_catalog
from tzbench.metrics import word_accuracy
from tzbench.runner.context import build_dataset, fetch
from tzbench.runner.infer import load_model
from tzbench.text import str_filt


def edit_kinds(label: str, read: str) -> Counter[str]:
    """``op@where`` counts turning ``label`` into ``read`` (case and punctuation ignored)."""
    gold, got = str_filt(label, "lower"), str_filt(read, "lower")
    out: Counter[str] = Counter()
    for op, i1, i2, _, _ in difflib.SequenceMatcher(None, gold, got, autojunk=False).get_opcodes():
        if op != "equal":
            out[f"{op}@{'first' if i1 == 0 else 'last' if i2 >= len(gold) else 'middle'}"] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--checkpoint", default=None, help="tzbench checkpoint (omit with --pretrained)")
    ap.add_argument("--pretrained", action="store_true", help="the model's shipped weights")
    ap.add_argument("--data", default="wild")
    ap.add_argument("--judge", action="append", default=None)
    ap.add_argument("--examples", type=int, default=0, help="print this many lost words per subset")
    args = ap.parse_args()
    catalog = get_catalog()
    checkpoint = args.checkpoint
    if args.pretrained:
        from tzbench.pretrained import pick_pretrained, pretrained_path

        checkpoint = str(pretrained_path(pick_pretrained(catalog, args.model)))
    loaded = load_model(catalog, args.model, checkpoint)
    net = loaded.module.eval()
    provider, _ = build_dataset(catalog, args.data, {}, loaded.info.in_channels)
    judges = {name: create_recognizer(name) for name in (args.judge or ["ppocr", "ppocrv2", "crnn_tz"])}
    for subset in ("easy", "medium", "hard"):
        ds = provider.load("test", subset)
        reads: dict[tuple[str, str], list[str]] = {}
        labels: list[str] = []
        for start in range(0, len(ds), 64):
            batch = fetch(ds, torch.arange(start, min(len(ds), start + 64)))
            with torch.no_grad():
                sr = net(batch["lr"]).float().clamp(0, 1)[:, :3]
            up = F.interpolate(batch["lr"][:, :3], size=sr.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
            labels += list(batch["label"])
            for name, judge in judges.items():
                reads.setdefault((name, "bicubic"), []).extend(judge.recognize(up))
                reads.setdefault((name, "model"), []).extend(judge.recognize(sr))
        for name in judges:
            b = word_accuracy(reads[(name, "bicubic")], labels)
            m = word_accuracy(reads[(name, "model")], labels)
            lost = [i for i, (x, y) in enumerate(zip(b, m)) if x and not y]
            won = sum(1 for x, y in zip(b, m) if y and not x)
            kinds: Counter[str] = Counter()
            for i in lost:
                kinds += edit_kinds(labels[i], reads[(name, "model")][i])
            print(f"{subset} {name}: bicubic {100 * sum(b) / len(b):.1f}, {args.model} {100 * sum(m) / len(m):.1f}; "
                  f"lost {len(lost)}, won {won}; lost words' edits: {dict(kinds.most_common())}", flush=True)
            for i in lost[: args.examples]:
                print(f"    {labels[i]!r}: bicubic {reads[(name, 'bicubic')][i]!r}, {args.model} "
                      f"{reads[(name, 'model')][i]!r}")


if __name__ == "__main__":
    main()
