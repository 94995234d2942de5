"""The CRNN judge: TextZoom's CRNN evaluation path around :class:`~.net.CRNN`."""

from __future__ import annotations

from torch import Tensor, nn

from tzbench_recognizers.common import Recognizer, ctc_greedy_decode, legacy_gray, to_signed
from tzbench_recognizers.crnn.params import CHARSET

__all__ = ["CRNNRecognizer"]


class CRNNRecognizer(Recognizer):
    """CRNN judge: gray 32x100 input, CTC greedy decoding over ``0-9a-z``.

    ``recognize`` returns ``converter_crnn.decode(raw=False)`` of the per-frame argmax, the
    strings TextZoom's test loop scores. Preprocessing: ``legacy`` is TextZoom's
    ``parse_crnn_data`` (bicubic ``sr[:, :3]`` to 32x100, 0.299/0.587/0.114 gray, left in
    ``[0, 1]``); ``native`` additionally maps to ``[-1, 1]``, the range crnn.pytorch trains on.

    Args: see :class:`tzbench_recognizers.common.Recognizer` (``mode``, ``weights``,
    ``device``, ``batch_size``); they match :class:`~.params.CRNNParams`.
    """

    name = "crnn"
    charset = CHARSET
    input_size = (32, 100)

    def build_net(self) -> nn.Module:
        from tzbench_recognizers.crnn.net import CRNN

        return CRNN(imgH=32, nc=1, nclass=len(CHARSET) + 1, nh=256)

    def preprocess(self, images: Tensor) -> Tensor:
        gray = legacy_gray(images, self.input_size)
        return gray if self.mode == "legacy" else to_signed(gray)

    def ctc_logits(self, images: Tensor) -> Tensor:
        """Per-frame logits ``(T, B, 37)`` of ``images`` in ``[0, 1]``, with gradients (for
        training losses that read SR outputs through this network; the blank is class 0)."""
        return self.net(self.preprocess(images))

    def logits_and_features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Per-frame logits ``(T, B, 37)`` and the CNN features ``(T, B, 512)`` the LSTMs read
        (training's deep supervision reads them out directly)."""
        seq = self.net.cnn(self.preprocess(images)).squeeze(2).permute(2, 0, 1)
        return self.net.rnn(seq), seq

    @property
    def feature_size(self) -> int:
        """Width of :meth:`logits_and_features`' features."""
        return int(self.net.rnn[0].rnn.input_size)

    def training_loss(self, images: Tensor, labels: list[str]) -> Tensor:
        """CTC over :meth:`ctc_logits` (labels reduced to ``0-9a-z``)."""
        from tzbench_recognizers.ctc import ctc_loss_from_logits

        return ctc_loss_from_logits(self.ctc_logits(images), labels, self.charset)

    def decode(self, output: Tensor) -> list[str]:
        # (T, B, C) logits -> (B, T) frame ids
        return ctc_greedy_decode(output.argmax(2).transpose(0, 1), CHARSET, raw=False)
