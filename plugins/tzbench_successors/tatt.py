"""TATT: Text Attention Network (Ma, Liang, Zhang, "A Text Attention Network for Spatial
Deformation Robust Scene Text Image Super-resolution", CVPR 2022), the official ``TSRN_TL_TRANS``
with its state-dict layout.

Architecture (scale 2, 16x64 -> 32x128, C = 4 with the mask channel, h = 32, d = 64)::

    prior: a CRNN's per-frame class probabilities on the LR image, softmax of (T=26, B, 37)
           logits, laid out (B, 37, 1, T) (the recognizer reads bicubic 32x100 gray of lr[:, :3])
    [train only] x -> STNHead (16x64 input) -> 20 points -> TPS -> (16x64)
    block1 = Conv9x9(C -> 2h) + PReLU                                  -> F (B, 64, 16, 64)
    infoGen (TP interpreter):
        src  = PReLU(Linear(37 -> d)(prior frames))                   (T, B, d)
        pos  = dropout(sinusoidal table[:T])                           (encoder keys and memory keys)
        memory = encoder(2 * src)     one post-norm layer, 4 heads, FFN d -> d, ReLU, dropout 0.1
        query  = BiGRU(16d -> 8d x 2) over a learnt (16*64, d) embedding, columns as the GRU's
                 batch and the image batch as its sequence (the official reshape)
        tgt    = F flattened to (1024, B, d)
        2 decoder layers: cross-attention(tgt + query, memory + pos, memory) + FFN (post-norm;
                 the self-attention and norm1 exist in the state dict but are not called)
        text map = mean of the two layers' LayerNorm'd outputs, back to (B, d, 16, 64)
    block2..block{n+1}: n text-guided recurrent residual blocks (TPGSR's, with t = d = 2h = 64)
    block{n+2} = Conv3x3 + BN; block{n+3} = [Conv3x3 + PixelShuffle(2) + mish] * log2(s) + Conv9x9
    y = tanh(block{n+3}(block1 + block{n+2}))

:class:`TSRNTLTrans` is the SR network alone, with the prior as an explicit input, so it is
testable without a recognizer. :class:`TATT` is what the runner builds: the network plus the
prior generator made through the core catalog (``crnn_tz`` by default, ``crnn`` with official
weights). As in the official loop the SR network reads the prior *detached*; the generator is
trained by the distillation term only (``finetune_prior=False`` freezes it). In training (with
``rotate_train > 0``) a second pass super-resolves the LR image rotated by a random small angle,
for ``tatt_loss``'s rotation structure-consistency term.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tzbench.layers.tps import STNHead, TPSSpatialTransformer
from tzbench.layers.upsample import UpsampleBlock, upsample_stages
from tzbench.weights import load_state_dict_file, load_strict
from tzbench_successors.text_prior import PRIOR_CLASSES, PRIOR_FRAMES, layout_probs, make_prior_generator
from tzbench_successors.tpgsr import StageReadings, TextGuidedResidualBlock

__all__ = ["TATT", "TSRNTLTrans", "TPInterpreter", "RotationReadings", "load_official_tatt", "load_tatt_state_dict",
           "rotate_images"]


def rotate_images(images: Tensor, arc: Tensor, rand_offs: Tensor, off_range: float = 0.2) -> Tensor:
    """TATT's training rotation (official ``torch_rotate_img``): rotate each image by ``arc[i]``
    radians about its centre in normalised coordinates, the aspect ratio H/W jittered by
    ``(2 * rand_offs[i] - 1) * off_range``; bilinear, zeros outside, ``align_corners=False``."""
    n, _, h, w = images.shape
    ratio = (h / float(w) + rand_offs * off_range * 2 - off_range).to(images)
    cos, sin = torch.cos(arc).to(images), torch.sin(arc).to(images)
    zero = torch.zeros_like(cos)
    theta = torch.stack([cos, sin * ratio, zero, -sin / ratio, cos, zero], 1).reshape(n, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class RotationReadings:
    """What a training forward of :class:`TATT` with ``rotate_train > 0`` leaves on its output for
    ``tatt_loss``'s structure-consistency term: the SR of the rotated LR image and the rotation."""

    sr_rotated: Tensor
    arc: Tensor
    rand_offs: Tensor


class PositionalEncoding(nn.Module):
    """The sinusoidal table (a persistent buffer ``pe`` (1, max_len, d), as the official
    checkpoints hold it) added to the input, then dropout."""

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(0, max_len).unsqueeze(1).float()
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(x + self.pe[:, : x.size(1)])


class EncoderLayer(nn.Module):
    """DETR's post-norm encoder layer: self-attention with positions on queries and keys, ReLU FFN."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src: Tensor, pos: Tensor, key_padding_mask: Tensor) -> Tensor:
        q = k = src + pos
        src = self.norm1(src + self.dropout1(self.self_attn(q, k, src, key_padding_mask=key_padding_mask)[0]))
        return self.norm2(src + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(src))))))


class DecoderLayer(nn.Module):
    """The official ``TransformerDecoderLayer_TP``: cross-attention + FFN, post-norm. Its
    ``self_attn`` and ``norm1`` are built (they are in the checkpoints) but never called."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.multihead_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt: Tensor, memory: Tensor, pos: Tensor, query_pos: Tensor,
                key_padding_mask: Tensor) -> tuple[Tensor, Tensor]:
        tgt2, weights = self.multihead_attn(tgt + query_pos, memory + pos, memory, key_padding_mask=key_padding_mask)
        tgt = self.norm2(tgt + self.dropout2(tgt2))
        tgt = self.norm3(tgt + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(tgt))))))
        return tgt, weights


class _Stack(nn.Module):
    """A holder for ``layers`` (and the decoder's final ``norm``), for the official key names."""

    def __init__(self, layers: list[nn.Module], norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        if norm is not None:
            self.norm = norm


class InfoTransformer(nn.Module):
    """The TP transformer: ``forward(src, pos, query_embed, tgt)`` -> (the decoder layers'
    mean output (HW, B, d), the last layer's head-averaged attention (B, HW, T))."""

    def __init__(self, d_model: int = 64, nhead: int = 4, dim_feedforward: int = 64, dropout: float = 0.1,
                 encoder_layers: int = 1, decoder_layers: int = 2, feat_size: tuple[int, int] = (16, 64)) -> None:
        super().__init__()
        self.encoder = _Stack([EncoderLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(encoder_layers)])
        self.decoder = _Stack([DecoderLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(decoder_layers)],
                              nn.LayerNorm(d_model))
        height = feat_size[0]
        self.gru_encoding = nn.GRU(d_model * height, d_model * height // 2, bidirectional=True, batch_first=True)
        self.feat_size = feat_size
        for p in self.parameters():  # the official _reset_parameters (DETR's)
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def encode_queries(self, query_embed: Tensor, batch: int) -> Tensor:
        """(HW, d) learnt queries -> (HW, B, d) through the BiGRU over columns. The official
        reshape hands the batch_first GRU a (W, B, H*d) tensor, so its sequence axis is the image
        batch: every step reads the same query, so a sample's queries depend on its position in
        the batch and on the batch size (3.6e-6 at the output under rule-B weights). Kept as it is."""
        h, w = self.feat_size
        d = query_embed.shape[1]
        q = query_embed.unsqueeze(1).repeat(1, batch, 1).reshape(h, w, batch, d).permute(1, 2, 0, 3)
        q, _ = self.gru_encoding(q.reshape(w, batch, h * d))
        return q.reshape(w, batch, h, d).permute(2, 0, 1, 3).reshape(h * w, batch, d)

    def forward(self, src: Tensor, pos: Tensor, query_embed: Tensor, tgt: Tensor) -> tuple[Tensor, Tensor]:
        query_pos = self.encode_queries(query_embed, src.shape[1])
        # an all-False padding mask, as the official call passes (every prior frame is real)
        mask = torch.zeros((src.shape[1], src.shape[0]), dtype=torch.bool, device=src.device)
        memory = src
        for layer in self.encoder.layers:
            memory = layer(memory + src, pos, mask)  # the official loop adds src again: 2 * src in layer 0
        out, weights, steps = tgt, src.new_zeros(()), []
        for layer in self.decoder.layers:
            out, weights = layer(out, memory, pos, query_pos, mask)
            steps.append(self.decoder.norm(out))
        return torch.stack(steps).mean(0), weights


class TPInterpreter(nn.Module):
    """TATT's text-prior interpreter: (image features (B, d, H, W), prior (B, 37, 1, T)) ->
    (text map (B, d, H, W), attention (B, HW, T)). ``fc_feature_in`` is built, never called."""

    def __init__(self, text_classes: int = PRIOR_CLASSES, channels: int = 64, output_size: tuple[int, int] = (16, 64),
                 feature_in: int = 64) -> None:
        super().__init__()
        self.fc_in = nn.Linear(text_classes, channels)
        self.fc_feature_in = nn.Linear(feature_in, channels)
        self.activation = nn.PReLU()
        self.transformer = InfoTransformer(channels, 4, channels, 0.1, 1, 2, output_size)
        self.pe = PositionalEncoding(channels, dropout=0.1, max_len=5000)
        self.output_size = output_size
        self.init_factor = nn.Embedding(output_size[0] * output_size[1], channels)

    def forward(self, image_feature: Tensor, prior: Tensor) -> tuple[Tensor, Tensor]:
        n, c, h, w = image_feature.shape
        if (h, w) != self.output_size:
            raise ValueError(f"TATT's TP interpreter is built for {self.output_size} features, got {(h, w)}")
        tgt = image_feature.reshape(n, c, h * w).permute(2, 0, 1)
        src = self.activation(self.fc_in(prior.permute(0, 3, 1, 2).squeeze(-1)))  # (B, T, d)
        pos = self.pe(torch.zeros_like(src)).permute(1, 0, 2)
        text, weights = self.transformer(src.permute(1, 0, 2), pos, self.init_factor.weight, tgt)
        return text.permute(1, 2, 0).reshape(n, c, h, w), weights


class TSRNTLTrans(nn.Module):
    """TSRN_TL_TRANS, TATT's SR network: ``forward(lr, prior)`` -> (B, C, H*s, W*s) in [-1, 1].

    Args:
        scale_factor: upscaling factor, a power of two (2 in TextZoom).
        width, height: HR size; the LR input must be (height/s, width/s) (the TP interpreter's
            learnt queries have that many positions).
        stn: build the TPS-STN (its keys are in the state dict); it runs in training only.
        srb_nums: number of text-guided residual blocks.
        mask: 4 input/output channels (RGB + binary mask) instead of 3.
        hidden_units: feature width ``2 * hidden_units``, also the width of the TP transformer and
            of the text map (official ``out_text_channels=64``: the decoder's target is block1's
            features, so the official class only runs when the two are equal).
        text_classes: classes of the prior (37: CTC blank + 0-9a-z).
        stn_at_test: also rectify in eval mode (the official code does not).
        grid_sample_align_corners: ``align_corners`` of the TPS ``grid_sample``; False is what
            the official code does under torch >= 1.3.
    """

    def __init__(self, scale_factor: int = 2, width: int = 128, height: int = 32, stn: bool = True,
                 srb_nums: int = 5, mask: bool = True, hidden_units: int = 32,
                 text_classes: int = PRIOR_CLASSES, stn_at_test: bool = False,
                 grid_sample_align_corners: bool = False) -> None:
        super().__init__()
        upsample_blocks = upsample_stages(scale_factor)
        if hidden_units % 2:
            raise ValueError(f"TATT needs an even hidden_units (4 attention heads over 2 * hidden_units), got {hidden_units}")
        in_planes = 4 if mask else 3
        channels = 2 * hidden_units
        self.lr_size = (height // scale_factor, width // scale_factor)
        self.in_planes = self.in_channels = in_planes
        self.srb_nums, self.stn, self.stn_at_test, self.text_classes = srb_nums, stn, stn_at_test, text_classes
        self.block1 = nn.Sequential(nn.Conv2d(in_planes, channels, kernel_size=9, padding=4), nn.PReLU())
        for i in range(srb_nums):
            setattr(self, f"block{i + 2}", TextGuidedResidualBlock(channels, channels))
        self.infoGen = TPInterpreter(text_classes, channels, self.lr_size, feature_in=channels)
        setattr(self, f"block{srb_nums + 2}",
                nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.BatchNorm2d(channels)))
        tail: list[nn.Module] = [UpsampleBlock(channels, 2) for _ in range(upsample_blocks)]
        tail.append(nn.Conv2d(channels, in_planes, kernel_size=9, padding=4))
        setattr(self, f"block{srb_nums + 3}", nn.Sequential(*tail))
        if stn:
            self.tps = TPSSpatialTransformer(output_image_size=self.lr_size, num_control_points=20,
                                             margins=(0.05, 0.05), align_corners=grid_sample_align_corners)
            # the same head as TPGSR's: (1, 2) last pooling for the 16x64 LR input
            self.stn_head = STNHead(in_planes=in_planes, num_ctrlpoints=20, activation=None, last_pool=(1, 2))

    def rectify(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The alignment module on the LR input: ``(rectified, control points (B, 20, 2))``."""
        if not self.stn:
            raise RuntimeError("this TSRN_TL_TRANS was built with stn=False")
        _, ctrl_points = self.stn_head(x)
        rectified, _ = self.tps(x, ctrl_points)
        return rectified, ctrl_points

    def text_map(self, feat1: Tensor, prior: Tensor) -> tuple[Tensor, Tensor]:
        """The TP interpreter on block1's features: (text map (B, d, h, w), attention (B, hw, T))."""
        return self.infoGen(feat1, prior)

    def forward(self, x: Tensor, prior: Tensor | None = None) -> Tensor:
        """``x`` (B, C, h, w) in [0, 1], ``prior`` (B, 37, 1, T) probabilities or None (zeros,
        as the official code does) -> (B, C, h*s, w*s) in [-1, 1] (tanh)."""
        if x.ndim != 4 or x.shape[1] != self.in_planes or tuple(x.shape[2:]) != self.lr_size:
            raise ValueError(f"TSRN_TL_TRANS expects (B, {self.in_planes}, {self.lr_size[0]}, {self.lr_size[1]}) "
                             f"input, got {tuple(x.shape)}")
        if prior is None:
            prior = x.new_zeros((x.shape[0], self.text_classes, 1, PRIOR_FRAMES))
        elif prior.ndim != 4 or prior.shape[:3] != (x.shape[0], self.text_classes, 1):
            raise ValueError(f"TSRN_TL_TRANS expects a ({x.shape[0]}, {self.text_classes}, 1, T) prior, "
                             f"got {tuple(prior.shape)}")
        if self.stn and (self.training or self.stn_at_test):
            x, _ = self.rectify(x)
        feat1 = self.block1(x)
        text, _ = self.text_map(feat1, prior)
        feat = feat1
        for i in range(self.srb_nums):
            feat = getattr(self, f"block{i + 2}")(feat, text)
        feat = getattr(self, f"block{self.srb_nums + 2}")(feat)
        return torch.tanh(getattr(self, f"block{self.srb_nums + 3}")(feat1 + feat))


class TATT(nn.Module):
    """TATT as the runner builds it: ``forward(lr)`` -> SR (B, C, 2h, 2w) in [-1, 1].

    The prior generator (a CTC recognizer: ``crnn_tz`` by default, or the official ``crnn``)
    reads the LR image; its network is a submodule (``tpg.*``), saved in the checkpoint. The SR
    network reads its prior detached (the official loop), so only the distillation term of
    ``tatt_loss`` (or ``tpgsr_loss``) trains it; ``finetune_prior=False`` freezes it (always in eval mode).
    ``rotate_train`` (degrees, official 5; 0 turns it off) adds the rotated training pass.
    ``prior_info`` says which prior was used and the sha256 of its starting weights.

    Args: see :class:`~tzbench_successors.tatt_params.TATTParams`.
    """

    def __init__(self, scale_factor: int = 2, width: int = 128, height: int = 32, stn: bool = True,
                 srb_nums: int = 5, mask: bool = True, hidden_units: int = 32,
                 stn_at_test: bool = False, grid_sample_align_corners: bool = False, prior: str = "crnn_tz",
                 prior_weights: str | None = None, finetune_prior: bool = True, rotate_train: float = 5.0) -> None:
        super().__init__()
        if rotate_train < 0:
            raise ValueError(f"rotate_train is a maximum angle in degrees (>= 0), got {rotate_train}")
        self.sr = TSRNTLTrans(scale_factor, width, height, stn, srb_nums, mask, hidden_units, PRIOR_CLASSES, stn_at_test, grid_sample_align_corners)
        rec, self.prior_info = make_prior_generator(prior, prior_weights, owner="TATT")
        # The recognizer object holds the preprocessing; only its network is a submodule.
        self.__dict__["_reader"] = rec
        self.tpg = rec.net
        self.tpg.requires_grad_(finetune_prior)
        self.in_planes = self.in_channels = self.sr.in_planes
        self.finetune_prior, self.rotate_train = finetune_prior, rotate_train

    def train(self, mode: bool = True) -> TATT:
        super().train(mode)
        if not self.finetune_prior:
            self.tpg.eval()  # a frozen prior keeps its running BN statistics
        return self

    def prior_probs(self, images: Tensor) -> Tensor:
        """The generator on ``images``: (T, B, 37) softmax probabilities."""
        return torch.softmax(self.tpg(self._reader.preprocess(images[:, :3])), -1)

    def forward(self, lr: Tensor) -> Tensor:
        probs = self.prior_probs(lr)
        prior = layout_probs(probs).detach()
        out = self.sr(lr, prior)
        if self.training:
            # tpgsr_loss reads the SR output and the generator's probabilities from here (the
            # runner hands a loss only (sr, hr)); one stage, as TATT's --stu_iter=1
            out.tpgsr_stages = StageReadings((out,), (probs,))  # type: ignore[attr-defined]
            if self.rotate_train > 0:
                out.tatt_rotation = self._rotated_pass(lr, prior)  # type: ignore[attr-defined]
        return out

    def _rotated_pass(self, lr: Tensor, prior: Tensor) -> RotationReadings:
        """The second SR pass of the structure-consistency loss: the LR image rotated by a
        uniform angle in [-rotate_train, rotate_train] degrees, with the same prior (the
        official loop feeds both of its passes one prior)."""
        n = lr.shape[0]
        arc = (torch.rand(n, device=lr.device) * 2 - 1) * (self.rotate_train * math.pi / 180.0)
        rand_offs = torch.rand(n, device=lr.device)
        return RotationReadings(self.sr(rotate_images(lr, arc, rand_offs), prior), arc, rand_offs)


def load_official_tatt(model: TSRNTLTrans, path: str | Path) -> TSRNTLTrans:
    """Load an official TATT SR checkpoint (``{'state_dict_G': ...}``; ``module.`` tolerated,
    missing ``num_batches_tracked`` tolerated; anything else missing, unexpected or of another
    shape raises :class:`tzbench.weights.WeightsError` naming the keys). Read with
    ``weights_only=True``."""
    return load_tatt_state_dict(model, load_state_dict_file(path, key="state_dict_G"), source=str(path))


def load_tatt_state_dict(model: TSRNTLTrans, state: Mapping[str, Tensor], source: str = "<state dict>") -> TSRNTLTrans:
    """Strictly load an official-layout TSRN_TL_TRANS state dict (see :func:`load_official_tatt`)."""
    expected = f"an official TATT TSRN_TL_TRANS checkpoint for TSRN_TL_TRANS(mask={model.in_planes == 4}, stn={model.stn}, srb_nums={model.srb_nums})"
    return load_strict(model, state, source=source, expected=expected)  # type: ignore[return-value]
