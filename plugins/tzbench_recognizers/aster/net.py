"""ASTER network as TextZoom builds it (``RecognizerBuilder`` with ``arch='ResNet_ASTER'``).

TPS rectification (``stn_head`` + ``tps``) -> ResNet-45-style encoder with a 2-layer BiLSTM
(``encoder``) -> attention GRU decoder (``decoder``) with the official beam search. Module
names, registration order and shapes equal the official state_dict (384 entries,
20,991,594 parameters), so the released ``demo.pth.tar`` loads with strict key checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

# TSRN took its rectifier from ASTER: one implementation serves both (other sizes here: a
# 32x64 head input and a 32x100 sampler output), proven against ASTER's own constructor buffers.
from tzbench.layers.tps import STNHead, TPSSpatialTransformer

from tzbench_recognizers.aster.params import EOS, NUM_CLASSES

__all__ = [
    "AsterBlock",
    "ResNetASTER",
    "AttentionUnit",
    "DecoderUnit",
    "BeamSearchResult",
    "TopBeam",
    "AttentionRecognitionHead",
    "SequenceCrossEntropyLoss",
    "ASTER",
]


def _conv1x1(in_planes: int, out_planes: int, stride: Sequence[int] | int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def _conv3x3(in_planes: int, out_planes: int, stride: Sequence[int] | int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class AsterBlock(nn.Module):
    """Residual block: conv1x1(stride) -> BN -> ReLU -> conv3x3 -> BN -> +shortcut -> ReLU.

    The stride sits on the 1x1 conv (not the 3x3), as in the official encoder.
    """

    def __init__(
        self, inplanes: int, planes: int, stride: Sequence[int] | int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class ResNetASTER(nn.Module):
    """ASTER encoder: (B,3,32,100) -> (B,25,512) sequence features.

    Stages of 3, 4, 6, 6, 3 blocks (32..512 channels) with strides [2,2], [2,2], [2,1],
    [2,1], [2,1] collapse the height to 1; a 2-layer BiLSTM(512, 256) follows when
    ``with_lstm`` (TextZoom passes the truthy string 'ResNet_ASTER', so it is on).
    """

    def __init__(self, with_lstm: bool = True, in_channels: int = 3) -> None:
        super().__init__()
        self.with_lstm = with_lstm
        self.layer0 = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
        )
        self.inplanes = 32
        self.layer1 = self._make_layer(32, 3, [2, 2])
        self.layer2 = self._make_layer(64, 4, [2, 2])
        self.layer3 = self._make_layer(128, 6, [2, 1])
        self.layer4 = self._make_layer(256, 6, [2, 1])
        self.layer5 = self._make_layer(512, 3, [2, 1])
        if with_lstm:
            self.rnn = nn.LSTM(512, 256, num_layers=2, bidirectional=True, batch_first=True)
            self.out_planes = 512
        else:
            self.out_planes = 512
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: list[int]) -> nn.Sequential:
        downsample = None
        if stride != [1, 1] or self.inplanes != planes:
            downsample = nn.Sequential(_conv1x1(self.inplanes, planes, stride), nn.BatchNorm2d(planes))
        layers: list[nn.Module] = [AsterBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers.extend(AsterBlock(planes, planes) for _ in range(1, blocks))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(B, T, 512)``; T = W/4 (25 for the 100-wide rectified image)."""
        x = self.layer0(x)
        x = self.layer5(self.layer4(self.layer3(self.layer2(self.layer1(x)))))
        feats = x.squeeze(2).transpose(2, 1)
        if self.with_lstm:
            feats, _ = self.rnn(feats)
        return feats


class AttentionUnit(nn.Module):
    """Additive attention: ``softmax_T(wEmbed(tanh(sEmbed(s) + xEmbed(x))))``."""

    def __init__(self, sDim: int, xDim: int, attDim: int) -> None:
        super().__init__()
        self.sDim, self.xDim, self.attDim = sDim, xDim, attDim
        self.sEmbed = nn.Linear(sDim, attDim)
        self.xEmbed = nn.Linear(xDim, attDim)
        self.wEmbed = nn.Linear(attDim, 1)
        for lin in (self.sEmbed, self.xEmbed, self.wEmbed):
            nn.init.normal_(lin.weight, std=0.01)
            nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor, s_prev: torch.Tensor) -> torch.Tensor:
        """``x`` (B,T,xDim), ``s_prev`` (1,B,sDim) -> attention weights (B,T)."""
        batch, steps, _ = x.shape
        x_proj = self.xEmbed(x.reshape(-1, self.xDim)).view(batch, steps, -1)
        s_proj = self.sEmbed(s_prev.squeeze(0)).unsqueeze(1).expand(batch, steps, self.attDim)
        energy = self.wEmbed(torch.tanh(s_proj + x_proj).reshape(-1, self.attDim)).view(batch, steps)
        return F.softmax(energy, dim=1)


class DecoderUnit(nn.Module):
    """One decoding step: attention context, GRU on ``[embedding(y_prev), context]``, fc logits.

    The embedding has ``yDim + 1`` rows; the extra last row is the start symbol.
    """

    def __init__(self, sDim: int, xDim: int, yDim: int, attDim: int) -> None:
        super().__init__()
        self.sDim, self.xDim, self.yDim, self.attDim = sDim, xDim, yDim, attDim
        self.emdDim = attDim
        self.attention_unit = AttentionUnit(sDim, xDim, attDim)
        self.tgt_embedding = nn.Embedding(yDim + 1, self.emdDim)
        self.gru = nn.GRU(input_size=xDim + self.emdDim, hidden_size=sDim, batch_first=True)
        self.fc = nn.Linear(sDim, yDim)
        nn.init.normal_(self.tgt_embedding.weight, std=0.01)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(
        self, x: torch.Tensor, s_prev: torch.Tensor, y_prev: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(logits (B,yDim), new state (1,B,sDim))``."""
        alpha = self.attention_unit(x, s_prev)
        context = torch.bmm(alpha.unsqueeze(1), x).squeeze(1)
        y_proj = self.tgt_embedding(y_prev.long())
        out, state = self.gru(torch.cat([y_proj, context], 1).unsqueeze(1), s_prev)
        return self.fc(out.squeeze(1)), state


class BeamSearchResult(NamedTuple):
    """Everything the beam search computes (the official code returns only ``beams[:, 0]``).

    ``beams`` (B,K,L) ids after the final re-sort, ``scores`` (B,K) summed log-probabilities,
    ``lengths`` (B,K) steps up to and including the EOS that ended a beam (L when none did).
    """

    beams: torch.Tensor
    scores: torch.Tensor
    lengths: torch.Tensor


class TopBeam(NamedTuple):
    """The top beam of the official beam search, as :meth:`AttentionRecognitionHead.beam_search_early_stop` finds it.

    ``ids`` (B,L): the reference's ``beams[:, 0]`` up to and including the EOS that ended it;
    after that EOS (where the reference holds junk from the overwritten slot) EOS again.
    ``score`` (B,) its summed log-probability, ``length`` (B,) as in :class:`BeamSearchResult`,
    ``steps`` the decoder steps that ran (``max_len_labels`` in the reference).
    """

    ids: torch.Tensor
    score: torch.Tensor
    length: torch.Tensor
    steps: int


def _backtrack(
    sc: torch.Tensor, pr: torch.Tensor, sy: torch.Tensor, k: int, eos: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The official backtracking (TopKDecoder) over stored steps, on the CPU.

    ``sc``, ``pr``, ``sy`` (L, B*k): per step the top-k scores *before* EOS beams were set to
    -inf, the flat predecessor (``b*k + beam`` of the previous step) and the symbol. Returns
    beams (B,k,L), scores (B,k) and lengths (B,k) after the final re-sort.
    """
    n_steps, flat = sc.shape
    batch = flat // k
    pos = (torch.arange(batch) * k).view(-1, 1)
    lengths = [[n_steps] * k for _ in range(batch)]
    sorted_score, sorted_idx = sc[-1].view(batch, k).topk(k)
    s = sorted_score.clone()
    eos_found = [0] * batch
    t_pred = (sorted_idx + pos).view(-1)
    backward: list[torch.Tensor] = []
    for t in range(n_steps - 1, -1, -1):
        current = sy[t].index_select(0, t_pred)
        t_pred = pr[t].index_select(0, t_pred)
        ended = sy[t].eq(eos).nonzero().view(-1).tolist()
        for flat_i in reversed(ended):
            b = flat_i // k
            slot = k - (eos_found[b] % k) - 1
            eos_found[b] += 1
            r = b * k + slot
            t_pred[r] = pr[t, flat_i]
            current[r] = sy[t, flat_i]
            s[b, slot] = sc[t, flat_i]
            lengths[b][slot] = t + 1
        backward.append(current)
    s, resort = s.topk(k)
    lengths = [[lengths[b][j] for j in resort[b].tolist()] for b in range(batch)]
    resort = (resort + pos).view(-1)
    beams = torch.stack([step.index_select(0, resort).view(batch, k) for step in reversed(backward)], dim=-1)
    return beams, s, torch.tensor(lengths, dtype=torch.long)


class _EndedBeams:
    """Per sample, the beams that emitted EOS and can still be in the reference's final set.

    Why only the first ``k`` (by step, then by topk rank within a step): the backtracking
    walks from the last step to the first and writes every EOS-ended beam over slot
    ``k-1 - (count % k)`` of its sample, so the beams written *last* - the earliest ones, and
    in one step the lower ranks (the flat indices are walked in reverse) - own the slots at
    the end. Once a sample has ``k`` of them they fill every slot whatever the later steps do.
    With fewer, every later candidate (a later EOS beam or a beam alive at the last step)
    descends from a beam alive now and scores at most its score (log-probabilities are <= 0),
    so a best ended beam *strictly* above every live beam stays on top. Exact ties keep a
    sample decoding: the final ``topk`` breaks them by slot, which later steps decide.
    """

    def __init__(self, batch: int, k: int) -> None:
        self.k = k
        self.count = torch.zeros(batch, dtype=torch.long)
        self.score = torch.full((batch, k), float("-inf"))
        self.step = torch.zeros((batch, k), dtype=torch.long)
        self.rank = torch.zeros((batch, k), dtype=torch.long)

    def add(self, t: int, rows: torch.Tensor, scores: torch.Tensor, ended: torch.Tensor) -> None:
        """Record step ``t``'s EOS beams of samples ``rows`` (scores before the -inf mask)."""
        count = self.count[rows]
        slot = ended.long().cumsum(1) - 1 + count.unsqueeze(1)
        a, j = (ended & slot.lt(self.k)).nonzero(as_tuple=True)
        g, sl = rows[a], slot[a, j]
        self.score[g, sl] = scores[a, j]
        self.step[g, sl] = t
        self.rank[g, sl] = j
        self.count[rows] = (count + ended.sum(1)).clamp(max=self.k)

    def decided(self, rows: torch.Tensor, live_max: torch.Tensor) -> torch.Tensor:
        """Which of ``rows`` have their final top beam fixed, given the best live score of each."""
        score = self.score[rows]
        best = score.max(1).values
        unique = score.eq(best.unsqueeze(1)).sum(1).eq(1)
        count = self.count[rows]
        return count.gt(0) & unique & (count.ge(self.k) | best.gt(live_max))

    def best(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(score, step, rank)`` of the best recorded EOS beam of each of ``rows``."""
        score, arg = self.score[rows].max(1)
        pick = arg.unsqueeze(1)
        return score, self.step[rows].gather(1, pick).squeeze(1), self.rank[rows].gather(1, pick).squeeze(1)


class AttentionRecognitionHead(nn.Module):
    """Attention decoder with teacher-forced ``forward`` and the official ``beam_search``.

    Args:
        num_classes: output classes (97 for voc 'all' + EOS/PADDING/UNKNOWN); the start
            symbol is ``num_classes``.
        in_planes: encoder feature size.
        sDim: GRU state size.
        attDim: attention and embedding size.
        max_len_labels: decoding steps; the reference beam search always runs all of them.
    """

    def __init__(self, num_classes: int, in_planes: int, sDim: int, attDim: int, max_len_labels: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_planes = in_planes
        self.sDim = sDim
        self.attDim = attDim
        self.max_len_labels = max_len_labels
        self.decoder = DecoderUnit(sDim=sDim, xDim=in_planes, yDim=num_classes, attDim=attDim)

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor, lengths: Sequence[int] | torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced logits ``(B, max(lengths), num_classes)``: step i is fed target i-1."""
        batch = x.size(0)
        steps = int(max(int(v) for v in lengths))
        state = x.new_zeros(1, batch, self.sDim)
        y_prev = torch.full((batch,), self.num_classes, dtype=torch.long, device=x.device)
        outputs = []
        for i in range(steps):
            if i > 0:
                y_prev = targets[:, i - 1]
            out, state = self.decoder(x, state, y_prev)
            outputs.append(out)
        return torch.stack(outputs, dim=1)

    def beam_search_full(self, x: torch.Tensor, beam_width: int, eos: int) -> BeamSearchResult:
        """Beam search exactly as the official code (IBM pytorch-seq2seq TopKDecoder).

        Always ``max_len_labels`` steps. Beam 0 starts at score 0, the others at -inf. At
        each step the top ``beam_width`` of (beam score + log-softmax) over all beams and
        classes survive; the score is stored *before* beams that emitted EOS are set to -inf
        (so they are not expanded). Backtracking walks from the sorted last step and, at
        every step where some beam emitted EOS, writes that ended sequence over the worst
        remaining slots of its sample (last slot first), then re-sorts by score. This is the
        reference :meth:`beam_search_early_stop` is proven against.
        """
        batch = x.size(0)
        k = beam_width
        c = self.num_classes
        n_steps = self.max_len_labels
        device = x.device
        # Each sample repeated k times in a row (AABBCC), so flat index = b * k + beam.
        feats = x.repeat_interleave(k, dim=0).contiguous()
        state = x.new_zeros(1, batch * k, self.sDim)
        pos = (torch.arange(batch, device=device) * k).view(-1, 1)
        scores = x.new_full((batch * k, 1), float("-inf"))
        scores[::k] = 0.0
        y_prev = torch.full((batch * k,), c, dtype=torch.long, device=device)

        stored_scores, stored_preds, stored_symbols = [], [], []
        for _ in range(n_steps):
            logits, state = self.decoder(feats, state, y_prev)
            total = scores.expand(-1, c) + F.log_softmax(logits, dim=1)
            top_scores, candidates = total.view(batch, -1).topk(k, dim=1)
            y_prev = (candidates % c).view(-1)
            scores = top_scores.view(-1, 1)
            # `//`: the official `/` was integer division on the torch it was written for.
            preds = (candidates // c + pos).view(-1)
            state = state.index_select(1, preds)
            stored_scores.append(scores.clone())
            scores = scores.masked_fill(y_prev.view(-1, 1).eq(eos), float("-inf"))
            stored_preds.append(preds)
            stored_symbols.append(y_prev)

        # Backtracking is scalar bookkeeping: do it on the CPU in one transfer.
        sc = torch.stack(stored_scores).squeeze(-1).cpu()  # (L, B*k)
        beams, s, lengths = _backtrack(sc, torch.stack(stored_preds).cpu(), torch.stack(stored_symbols).cpu(), k, eos)
        return BeamSearchResult(beams=beams.to(device), scores=s.to(device), lengths=lengths.to(device))

    def _beam_step(
        self, feats: torch.Tensor, x_proj: torch.Tensor, state: torch.Tensor, y_prev: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:class:`DecoderUnit`'s step for all beams, without recomputing ``xEmbed`` every step.

        ``feats`` (n*k,T,D) per beam, ``x_proj = xEmbed(x)`` (n,T,A) per *sample* (it does not
        depend on the state: the reference computes it for every beam at every step), ``state``
        (n*k,S) and ``y_prev`` (n*k,) per beam. Otherwise the reference's operations in its
        order and shapes, so each step gives bit-identical values (measured on CPU: a
        per-sample context ``bmm`` would not).
        """
        unit = self.decoder
        att = unit.attention_unit
        n, steps_t, _ = x_proj.shape
        s_proj = att.sEmbed(state).view(n, -1, 1, att.attDim)
        energy = att.wEmbed(torch.tanh(s_proj + x_proj.unsqueeze(1))).view(-1, steps_t)
        context = torch.bmm(F.softmax(energy, dim=1).unsqueeze(1), feats).squeeze(1)
        gru = unit.gru
        step_in = torch.cat([unit.tgt_embedding(y_prev), context], 1)
        state = torch.gru_cell(step_in, state, gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
        return unit.fc(state), state

    def beam_search_early_stop(self, x: torch.Tensor, beam_width: int, eos: int) -> TopBeam:
        """The top beam of :meth:`beam_search_full`, stopping each sample once it is decided.

        A sample leaves the batch as soon as the remaining steps provably cannot change the
        reference's final top beam (see :class:`_EndedBeams`); its ids are traced back from the
        EOS that ended it. A sample still undecided after ``max_len_labels`` steps goes through
        the reference backtracking itself. The decoder steps run for all beams of the samples
        still decoding at once, with the attention's ``xEmbed(x)`` computed once per sample.
        """
        batch, k, c, n_steps = x.size(0), beam_width, self.num_classes, self.max_len_labels
        device = x.device
        x_proj = self.decoder.attention_unit.xEmbed(x.contiguous())
        feats = x.repeat_interleave(k, dim=0).contiguous()
        state = x.new_zeros(batch * k, self.sDim)
        scores = x.new_full((batch, k), float("-inf"))
        scores[:, 0] = 0.0
        y_prev = torch.full((batch * k,), c, dtype=torch.long, device=device)
        rows = torch.arange(batch)  # the samples still decoding, in the order of the device tensors
        hist_sc = torch.zeros(n_steps, batch, k)
        hist_par = torch.zeros(n_steps, batch, k, dtype=torch.long)
        hist_sym = torch.zeros(n_steps, batch, k, dtype=torch.long)
        ended_beams = _EndedBeams(batch, k)
        out = TopBeam(torch.full((batch, n_steps), eos, dtype=torch.long), torch.zeros(batch),
                      torch.full((batch,), n_steps, dtype=torch.long), 0)
        steps = 0
        for t in range(n_steps):
            steps = t + 1
            logits, state = self._beam_step(feats, x_proj, state, y_prev)
            total = scores.view(-1, 1) + F.log_softmax(logits, dim=1)
            top_scores, candidates = total.view(rows.numel(), -1).topk(k, dim=1)
            parents = candidates // c + torch.arange(rows.numel(), device=device).unsqueeze(1) * k
            state = state.index_select(0, parents.view(-1))
            y_prev = (candidates % c).view(-1)
            scores = top_scores.masked_fill(y_prev.view(-1, k).eq(eos), float("-inf"))
            sc_cpu, cand_cpu = top_scores.cpu(), candidates.cpu()
            hist_sc[t, rows], hist_par[t, rows], hist_sym[t, rows] = sc_cpu, cand_cpu // c, cand_cpu % c
            ended = hist_sym[t, rows].eq(eos)
            ended_beams.add(t, rows, sc_cpu, ended)
            done = ended_beams.decided(rows, sc_cpu.masked_fill(ended, float("-inf")).max(1).values)
            if not bool(done.any()):
                continue
            self._finish_decided(out, rows[done], ended_beams, hist_par, hist_sym)
            keep = (~done).nonzero().view(-1)
            rows = rows[keep]
            if rows.numel() == 0:
                break
            keep = keep.to(device)
            beams_kept = (keep.unsqueeze(1) * k + torch.arange(k, device=device)).view(-1)
            x_proj, scores = x_proj[keep], scores[keep]
            feats, state, y_prev = feats[beams_kept], state[beams_kept], y_prev[beams_kept]
        if rows.numel():
            _finish_with_backtracking(out, rows, hist_sc, hist_par, hist_sym, k, eos)
        return TopBeam(out.ids.to(device), out.score.to(device), out.length.to(device), steps)

    @staticmethod
    def _finish_decided(
        out: TopBeam, rows: torch.Tensor, ended_beams: _EndedBeams, hist_par: torch.Tensor, hist_sym: torch.Tensor
    ) -> None:
        """Write the decided samples' top beams into ``out``: trace each back from its EOS."""
        score, step, rank = ended_beams.best(rows)
        out.score[rows] = score
        out.length[rows] = step + 1
        for t in range(int(step.max()), -1, -1):
            on = step.ge(t)
            g, j = rows[on], rank[on]
            out.ids[g, t] = hist_sym[t, g, j]
            rank[on] = hist_par[t, g, j]

    def beam_search(self, x: torch.Tensor, beam_width: int, eos: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The official return value: top beam ids ``(B, L)`` and ``ones_like`` of them.

        The ones are an official quirk (no real score is returned); ids after EOS are junk.
        """
        pred = self.beam_search_full(x, beam_width, eos).beams[:, 0]
        return pred, torch.ones_like(pred)


def _finish_with_backtracking(
    out: TopBeam,
    rows: torch.Tensor,
    hist_sc: torch.Tensor,
    hist_par: torch.Tensor,
    hist_sym: torch.Tensor,
    k: int,
    eos: int,
) -> None:
    """Write the top beams of samples that ran every step into ``out``, by the reference backtracking."""
    n_steps, n = hist_sc.size(0), rows.numel()
    pos = (torch.arange(n) * k).view(1, n, 1)
    beams, s, lengths = _backtrack(
        hist_sc[:, rows].reshape(n_steps, n * k),
        (hist_par[:, rows] + pos).reshape(n_steps, n * k),
        hist_sym[:, rows].reshape(n_steps, n * k),
        k,
        eos,
    )
    top = beams[:, 0]
    after = torch.arange(n_steps).unsqueeze(0).ge(lengths[:, :1])
    out.ids[rows] = top.masked_fill(after, eos)
    out.score[rows] = s[:, 0]
    out.length[rows] = lengths[:, 0]


class SequenceCrossEntropyLoss(nn.Module):
    """Masked sequence NLL: summed over valid steps, divided by the batch size.

    The official defaults (``sequence_normalize=False``, ``sample_normalize=True``).
    """

    def __init__(self, sequence_normalize: bool = False, sample_normalize: bool = True) -> None:
        super().__init__()
        self.sequence_normalize = sequence_normalize
        self.sample_normalize = sample_normalize

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, lengths: Sequence[int] | torch.Tensor
    ) -> torch.Tensor:
        """``logits`` (B,L,C), ``targets`` (B,>=L) ids, ``lengths`` per sample -> scalar."""
        batch = targets.size(0)
        lens = torch.as_tensor([int(v) for v in lengths], device=logits.device)
        max_len = int(lens.max())
        if max_len != logits.size(1):
            raise ValueError(f"logits have {logits.size(1)} steps but max(lengths) is {max_len}")
        steps = torch.arange(max_len, device=logits.device)
        mask = (steps.unsqueeze(0) < lens.unsqueeze(1)).to(logits.dtype).reshape(-1, 1)
        logp = F.log_softmax(logits.reshape(-1, logits.size(2)), dim=1)
        tgt = targets[:, :max_len].reshape(-1, 1).long()
        loss = torch.sum(-logp.gather(1, tgt) * mask)
        if self.sequence_normalize:
            loss = loss / torch.sum(mask)
        if self.sample_normalize:
            loss = loss / batch
        return loss


class ASTER(nn.Module):
    """TextZoom's ASTER recogniser (``RecognizerBuilder``), official state_dict layout.

    Input: images ``(B, 3, H, W)`` in [-1, 1] (TextZoom feeds 32x128). With ``STN_ON`` the
    STN head sees a bilinear (align_corners=True) 32x64 copy and the TPS warps the *full*
    input to 32x100; the encoder then yields 25 steps.

    Args:
        rec_num_classes: decoder classes (97 = 94 symbols + EOS, PADDING, UNKNOWN).
        sDim: decoder state size.
        attDim: attention/embedding size.
        max_len_labels: decoding steps.
        eos: end-of-sequence id.
        STN_ON: use the TPS rectifier.
        beam_width: beam width of inference (5 in TextZoom).
        beam_early_stop: eval returns the reference's top beam found with early stopping
            (:meth:`AttentionRecognitionHead.beam_search_early_stop`, the same strings, many
            times faster); ``False`` runs the official always-``max_len_labels``-steps search
            and returns all its beams.
        grid_sample_align_corners: the TPS ``grid_sample`` ``align_corners``. The official
            call passes none: True on torch <= 1.2 (what the released weights were trained
            under, hence the default), False on torch >= 1.3 (the same code run today).
        tps_inputsize, tps_outputsize, num_control_points, tps_margins, stn_activation:
            the rectifier configuration (TextZoom's values are the defaults).
    """

    def __init__(
        self,
        rec_num_classes: int = NUM_CLASSES,
        sDim: int = 512,
        attDim: int = 512,
        max_len_labels: int = 100,
        eos: int = EOS,
        STN_ON: bool = True,
        beam_width: int = 5,
        beam_early_stop: bool = True,
        grid_sample_align_corners: bool = True,
        tps_inputsize: tuple[int, int] = (32, 64),
        tps_outputsize: tuple[int, int] = (32, 100),
        num_control_points: int = 20,
        tps_margins: tuple[float, float] = (0.05, 0.05),
        stn_activation: str = "none",
    ) -> None:
        super().__init__()
        self.rec_num_classes = rec_num_classes
        self.sDim = sDim
        self.attDim = attDim
        self.max_len_labels = max_len_labels
        self.eos = eos
        self.STN_ON = STN_ON
        self.beam_width = beam_width
        self.beam_early_stop = bool(beam_early_stop)
        self.tps_inputsize = tuple(tps_inputsize)
        # Registration order = official state_dict order: encoder, decoder, (loss), tps, stn_head.
        self.encoder = ResNetASTER(with_lstm=True)
        self.decoder = AttentionRecognitionHead(
            num_classes=rec_num_classes,
            in_planes=self.encoder.out_planes,
            sDim=sDim,
            attDim=attDim,
            max_len_labels=max_len_labels,
        )
        self.rec_crit = SequenceCrossEntropyLoss()
        if STN_ON:
            self.tps = TPSSpatialTransformer(
                output_image_size=tuple(tps_outputsize),
                num_control_points=num_control_points,
                margins=tuple(tps_margins),
                align_corners=grid_sample_align_corners,
            )
            self.stn_head = STNHead(in_planes=3, num_ctrlpoints=num_control_points, activation=stn_activation)

    @property
    def grid_sample_align_corners(self) -> bool:
        """``align_corners`` of the TPS ``grid_sample`` (switchable after construction)."""
        return bool(self.STN_ON and self.tps.align_corners)

    @grid_sample_align_corners.setter
    def grid_sample_align_corners(self, value: bool) -> None:
        if self.STN_ON:
            self.tps.align_corners = bool(value)

    def constructor_buffers(self) -> dict[str, torch.Tensor]:
        """Constructor values of the ``tps.*`` buffers (to fill in checkpoints that lack them)."""
        if not self.STN_ON:
            return {}
        return {f"tps.{k}": v for k, v in self.tps.constructor_buffers().items()}

    def rectify(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(rectified (B,3,32,100), ctrl_points (B,N,2))``; identity when STN is off."""
        if not self.STN_ON:
            return images, images.new_zeros(images.size(0), 0, 2)
        stn_input = F.interpolate(images, self.tps_inputsize, mode="bilinear", align_corners=True)
        _, ctrl_points = self.stn_head(stn_input)
        rectified, _ = self.tps(images, ctrl_points)
        return rectified, ctrl_points

    def forward(
        self,
        images: torch.Tensor,
        rec_targets: torch.Tensor | None = None,
        rec_lengths: Sequence[int] | torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run ASTER like the official ``RecognizerBuilder.forward``.

        Training mode needs targets and returns ``loss_rec`` and ``logits`` (teacher forced).
        Eval mode returns ``pred_rec`` (B,L) (top beam), ``pred_rec_score`` (ones, as the
        official code), ``ctrl_points``, ``rectified`` and ``encoder_feats``; with
        ``beam_early_stop`` also ``top_beam_score`` and ``top_beam_length`` (B,) (``pred_rec``
        holds EOS after the top beam's EOS), else the reference beam-search internals
        ``all_beams`` (B,K,L), ``beam_scores`` (B,K) and ``beam_lengths`` (B,K). With targets,
        also the teacher-forced ``logits`` and ``loss_rec`` (the official eval path always
        computes them, from placeholder targets).
        """
        rectified, ctrl_points = self.rectify(images)
        feats = self.encoder(rectified).contiguous()
        out: dict[str, torch.Tensor] = {}
        if self.training:
            if rec_targets is None or rec_lengths is None:
                raise ValueError("ASTER training forward needs rec_targets and rec_lengths")
        else:
            if self.beam_early_stop:
                top = self.decoder.beam_search_early_stop(feats, self.beam_width, self.eos)
                out["pred_rec"] = top.ids
                out["top_beam_score"] = top.score
                out["top_beam_length"] = top.length
            else:
                result = self.decoder.beam_search_full(feats, self.beam_width, self.eos)
                out["pred_rec"] = result.beams[:, 0]
                out["all_beams"] = result.beams
                out["beam_scores"] = result.scores
                out["beam_lengths"] = result.lengths
            out["pred_rec_score"] = torch.ones_like(out["pred_rec"])
            out["ctrl_points"] = ctrl_points
            out["rectified"] = rectified
            out["encoder_feats"] = feats
        if rec_targets is not None and rec_lengths is not None:
            logits = self.decoder(feats, rec_targets, rec_lengths)
            out["logits"] = logits
            out["loss_rec"] = self.rec_crit(logits, rec_targets, rec_lengths)
        return out
