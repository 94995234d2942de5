"""The example judge: a small CTC reader (conv features, one classifier per image column).

Untrained, it reads arbitrary digits; it shows the judge contract, not a useful recognizer. A
real judge loads trained weights here (the ``weights`` param; with ``needs_weights=True`` in its
spec the runner finds the file under ``$TZBENCH_HOME/weights/<name>/`` and passes its path).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

CHARSET = "0123456789"


class ColumnJudge:
    """``recognize(images (B, 3, H, W) in [0, 1]) -> list[str]``; the network is ``.net``."""

    charset = CHARSET

    def __init__(self, weights: str | None = None, seed: int = 0) -> None:
        # A private generator: building the judge neither reads nor moves the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d((2, 2)),
                nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 32)),
                nn.Flatten(2), nn.Conv1d(32, 1 + len(CHARSET), 1),
            )
        if weights is not None:
            self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
        self.net.eval()

    def preprocess(self, images: Tensor) -> Tensor:
        """Own preprocessing: drop a mask channel, gray, resize to 32 x 128."""
        gray = images[:, :3].mean(1, keepdim=True)
        return nn.functional.interpolate(gray, size=(32, 128), mode="bilinear", align_corners=False)

    @torch.no_grad()
    def recognize(self, images: Tensor) -> list[str]:
        logits = self.net(self.preprocess(images.float().cpu()))  # (B, 1 + classes, T)
        out = []
        for row in logits.argmax(1).tolist():  # greedy CTC: collapse repeats, drop blanks (0)
            keep = [c for i, c in enumerate(row) if c != 0 and (i == 0 or c != row[i - 1])]
            out.append("".join(CHARSET[c - 1] for c in keep))
        return out
