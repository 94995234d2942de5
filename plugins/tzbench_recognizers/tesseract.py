"""``tesseract``: the classical Tesseract OCR engine (Debian ``tesseract-ocr``) as a judge.

The judge is always listed; creating it needs the ``tesseract`` binary on ``PATH`` and fails
with an install hint otherwise. Each word image is upscaled (Tesseract wants glyphs tens of
pixels high), written as PNG to the binary's stdin and read in single-line mode
(``--psm 7``); the text is reduced to TextZoom's alphabet (lower-case ``[0-9a-z]``).

This module imports neither torch nor numpy at import time, so the plugin can import
:class:`TesseractParams` from here cheaply.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["TesseractParams", "TesseractRecognizer", "find_tesseract", "INSTALL_HINT", "TARGET", "SUMMARY", "PAPER"]

INSTALL_HINT = "install it with `apt-get install tesseract-ocr` (Debian/Ubuntu), or pass binary=PATH"
TARGET = "tzbench_recognizers.tesseract:TesseractRecognizer"
SUMMARY = "Tesseract OCR (LSTM engine, single-line mode) via its command-line binary; a classical judge"
PAPER = "Smith. An Overview of the Tesseract OCR Engine. ICDAR 2007"


class TesseractParams(BaseModel):
    """Hyper-parameters of the Tesseract judge."""

    model_config = ConfigDict(extra="forbid")

    binary: str | None = Field(default=None, description="tesseract executable; None: found on PATH")
    lang: str = Field(default="eng", description="traineddata language(s), e.g. 'eng' or 'eng+deu'")
    psm: int = Field(default=7, ge=0, le=13, description="page segmentation mode (7: a single text line)")
    oem: int | None = Field(default=None, ge=0, le=3, description="OCR engine mode; None: the binary's default")
    scale: int = Field(default=3, ge=1, le=8, description="integer upscaling before OCR (32 px -> 96 px high)")
    whitelist: bool = Field(default=True, description="restrict output to 0-9A-Za-z (tessedit_char_whitelist)")
    workers: int = Field(default=2, ge=1, description="tesseract processes run at once")
    timeout_s: float = Field(default=30.0, gt=0, description="per-image time limit")


def find_tesseract(binary: str | None = None) -> str:
    """Path of the tesseract executable, or FileNotFoundError with the install hint."""
    found = shutil.which(binary or "tesseract")
    if found is None:
        what = f"tesseract binary {binary!r}" if binary else "the tesseract binary (not on PATH)"
        raise FileNotFoundError(f"tesseract judge: cannot find {what}; {INSTALL_HINT}")
    return found


class TesseractRecognizer:
    """Tesseract as a tzbench judge: ``recognize(images) -> list[str]``.

    Args: the fields of :class:`TesseractParams`.

    Raises:
        FileNotFoundError: when the binary is missing (the message says how to install it).
    """

    name = "tesseract"
    mode = "native"
    charset = "0123456789abcdefghijklmnopqrstuvwxyz"

    def __init__(
        self,
        binary: str | None = None,
        lang: str = "eng",
        psm: int = 7,
        oem: int | None = None,
        scale: int = 3,
        whitelist: bool = True,
        workers: int = 2,
        timeout_s: float = 30.0,
    ) -> None:
        self.binary = find_tesseract(binary)
        self.lang, self.psm, self.oem, self.scale = lang, psm, oem, scale
        self.whitelist, self.workers, self.timeout_s = whitelist, workers, timeout_s
        self.model_path = self.binary  # what the runner hashes to identify the judge's "weights"

    def to(self, device: object) -> TesseractRecognizer:
        """Tesseract runs on the CPU; inputs are copied there."""
        return self

    def command(self) -> list[str]:
        """The command line run for each image (image on stdin, text on stdout)."""
        cmd = [self.binary, "stdin", "stdout", "--psm", str(self.psm), "-l", self.lang]
        if self.oem is not None:
            cmd += ["--oem", str(self.oem)]
        if self.whitelist:
            cmd += ["-c", "tessedit_char_whitelist=0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"]
        return cmd

    def _png(self, image: Tensor) -> bytes:
        from PIL import Image

        rgb = (image[:3].detach().float().cpu().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).contiguous()
        img = Image.fromarray(rgb.numpy(), "RGB")
        if self.scale > 1:
            img = img.resize((img.width * self.scale, img.height * self.scale), Image.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()

    def _read_one(self, png: bytes) -> str:
        from tzbench.text import str_filt

        # One OpenMP thread per process: the pool already runs several processes.
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        try:
            res = subprocess.run(self.command(), input=png, capture_output=True, timeout=self.timeout_s,
                                 env=env, check=False)
        except subprocess.TimeoutExpired:
            return ""
        if res.returncode != 0:
            raise RuntimeError(f"tesseract failed (exit {res.returncode}): {res.stderr.decode(errors='replace')[-300:]}")
        return str_filt(res.stdout.decode("utf-8", errors="replace"), "lower")

    def recognize(self, images: Tensor) -> list[str]:
        """Strings for ``(B, C>=3, H, W)`` images in ``[0, 1]`` (lower-case ``[0-9a-z]``)."""
        if images.dim() != 4 or images.shape[1] < 3:
            raise ValueError(f"tesseract expects (B, C>=3, H, W) images, got shape {tuple(images.shape)}")
        pngs = [self._png(img) for img in images]
        if self.workers == 1 or len(pngs) == 1:
            return [self._read_one(p) for p in pngs]
        with ThreadPoolExecutor(self.workers) as pool:
            return list(pool.map(self._read_one, pngs))

    __call__ = recognize

    def __repr__(self) -> str:
        return f"TesseractRecognizer(binary={self.binary!r}, lang={self.lang!r}, psm={self.psm})"
