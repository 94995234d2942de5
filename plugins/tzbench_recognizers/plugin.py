"""Built-in judges: ppocr (offline, pretrained) and the TextZoom judges crnn, moran, aster.

Only torch-free ``params`` modules are imported here, so listing judges stays cheap.
"""

from __future__ import annotations

from tzbench.hookspecs import hookimpl
from tzbench.specs import RecognizerSpec
from tzbench_recognizers.aster import params as aster
from tzbench_recognizers.crnn import params as crnn
from tzbench_recognizers.moran import params as moran
from tzbench_recognizers.params_ppocr import PPOCRParams


@hookimpl
def register_recognizers() -> list[RecognizerSpec]:
    """ppocr, crnn, moran and aster."""
    official = [
        RecognizerSpec(name=name, target=m.TARGET, params=p, summary=m.SUMMARY, paper=m.PAPER, charset=m.CHARSET,
                       weights=(m.WEIGHTS,), needs_weights=True)
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
        *official,
    ]
