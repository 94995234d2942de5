"""A fast CPU path for TSRN's bidirectional GRU over the rows or columns of a feature map.

TSRN runs a 1x1 convolution and a 1-layer bidirectional ``nn.GRU`` (hidden = C/2) over every
row of a feature map (and, with H and W swapped, over every column). On CPU, autograd through
``nn.GRU`` records a dozen small operations per time step and direction and runs two small
GEMMs per step in the backward; together with the permute/contiguous copies around it, that
is a large share of a TSRN training step.

:func:`bigru_2d` computes the same function with fewer, larger operations:

* the 1x1 convolution and the GRU input projection form one affine map per direction;
* both directions advance together, one batched GEMM and a handful of elementwise operations
  per step (time is processed in chunks whose inputs are gathered with direction 1 reversed);
* :class:`_BiGRU2d` has a hand-written backward that walks the steps once; weight and input
  gradients are then one GEMM per chunk;
* ``tanh`` is evaluated as ``2 * sigmoid(2x) - 1`` (sigmoid is much faster on CPU), the
  doubling folded exactly into the weights.

The maths is the ``nn.GRU`` definition (gate order r, z, n)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

Results equal the ``nn.GRU`` module path up to float32 rounding (about 1e-6 relative on
outputs and gradients; tests/plugins/test_tsrn_fastpath.py). Each graph can be
backpropagated once (buffers are reused in place); double backward is not supported.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

__all__ = ["bigru_2d", "fused_projection"]


def fused_projection(conv: nn.Conv2d, gru: nn.GRU) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-direction weights of ``gru(conv(x))`` with the 1x1 conv folded into ``W_ih``.

    Returns ``(w_in (2, 3H, C), b_in (2, 3H), w_hh (2, 3H, H), b_hh (2, 3H))``, direction 0
    forward and 1 reverse, built with differentiable ops so gradients reach the parameters.
    The rows of gate n are doubled (an exact scaling) because the scan evaluates
    ``tanh(p) = 2 * sigmoid(2p) - 1``: sigmoid is several times faster than tanh on CPU.
    """
    w_ih = torch.stack([gru.weight_ih_l0, gru.weight_ih_l0_reverse])
    w_hh = torch.stack([gru.weight_hh_l0, gru.weight_hh_l0_reverse])
    b_ih = torch.stack([gru.bias_ih_l0, gru.bias_ih_l0_reverse])
    b_hh = torch.stack([gru.bias_hh_l0, gru.bias_hh_l0_reverse])
    hid = gru.hidden_size
    scale = torch.ones(3 * hid, dtype=w_ih.dtype, device=w_ih.device)
    scale[2 * hid :] = 2.0
    w_c = conv.weight.reshape(conv.out_channels, conv.in_channels)
    w_in = torch.matmul(w_ih, w_c)
    b_in = b_ih if conv.bias is None else torch.matmul(w_ih, conv.bias) + b_ih
    return w_in * scale[:, None], b_in * scale, w_hh * scale[:, None], b_hh * scale


#: Rows (time steps x sequences) per direction in one chunk of the scan. Chunks keep every
#: buffer well below glibc's 32 MiB mmap threshold, so freed buffers are reused instead of
#: being returned to the kernel and faulted in again page by page on the next call.
CHUNK_ROWS = 16384


class _BiGRU2d(torch.autograd.Function):
    """Projection + bidirectional GRU scan over one spatial axis, with a manual backward.

    Inputs: ``x`` (B, C, H, W); ``w_in`` (2, 3h, C); ``b_in`` (2, 3h); ``w_hh`` (2, 3h, h);
    ``b_hh`` (2, 3h), gate-n rows doubled (see :func:`fused_projection`); ``time_axis`` 1
    (sequences run down columns, along H) or 2 (along rows, along W), an axis of the
    (B, H, W, C) view. Output: (B, 2h, H, W) in channels-last memory, forward states then
    backward states.

    The scan runs in *step* order: at step t direction 0 is at time t and direction 1 at
    time T-1-t, so one tensor slice serves both directions. Time is cut into chunks; per
    chunk the inputs of both directions are gathered (direction 1 time-reversed) into a
    (2, Tc, B, O, C) buffer and projected by one batched GEMM into ``gi`` (2, Tc, B, O, 3h).
    The scan overwrites each ``gi`` slot with the gate values (r, z, n) the backward needs,
    and the backward overwrites them with the pre-activation gradients, which then feed one
    GEMM per chunk for the input and weight gradients. The graph can therefore be
    backpropagated only once.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, x: Tensor, w_in: Tensor, b_in: Tensor, w_hh: Tensor, b_hh: Tensor, time_axis: int
    ) -> Tensor:
        batch, channels, height, width = x.shape
        hid = w_hh.shape[-1]
        h2, h3 = 2 * hid, 3 * hid
        x_t = x.permute(0, 2, 3, 1).movedim(time_axis, 0)  # (T, B, O, C) view
        steps, _, other, _ = x_t.shape
        n_seq = batch * other
        chunk = max(1, min(steps, CHUNK_ROWS // max(1, n_seq)))
        bounds = [(t0, min(steps, t0 + chunk)) for t0 in range(0, steps, chunk)]

        w_in_t = w_in.transpose(1, 2)
        b_in_3d = b_in.unsqueeze(1)
        w_hh_t = w_hh.transpose(1, 2).contiguous()
        b_hh_3d = b_hh.unsqueeze(1)
        gh = x.new_empty(2, n_seq, h3)
        gh4 = gh.view(2, batch, other, h3)
        out = x.new_empty(batch, height, width, 2, hid)
        out_t = out.movedim(time_axis, 0)  # (T, B, O, 2, h)
        h = x.new_zeros(2, batch, other, hid)
        saved: list[Tensor] = []
        for t0, t1 in bounds:
            size = t1 - t0
            rev = torch.arange(steps - 1 - t0, steps - 1 - t1, -1, device=x.device)
            xc = x.new_empty(2, size, batch, other, channels)
            xc[0].copy_(x_t[t0:t1])
            torch.index_select(x_t, 0, rev, out=xc[1])
            gi = torch.baddbmm(b_in_3d, xc.view(2, size * n_seq, channels), w_in_t)
            gi = gi.view(2, size, batch, other, h3)
            ghn = x.new_empty(size, 2, batch, other, hid)
            hs = x.new_empty(2, size, batch, other, hid)  # direction-major: per-direction GEMMs later
            for i in range(size):
                torch.baddbmm(b_hh_3d, h.view(2, n_seq, hid), w_hh_t, out=gh)
                s = gi[:, i]
                s[..., :h2].add_(gh4[..., :h2]).sigmoid_()
                n = s[..., h2:]
                # n = tanh(p) = 2 sigmoid(2p) - 1, 2p computed exactly by the doubled weights
                n.addcmul_(s[..., :hid], gh4[..., h2:]).sigmoid_().mul_(2.0).sub_(1.0)
                ghn[i].copy_(gh4[..., h2:])
                # h' = n + z * (h - n)
                h = torch.lerp(n, h, s[..., hid:h2], out=hs[:, i])
            out_t[t0:t1, :, :, 0].copy_(hs[0])
            out_t[:, :, :, 1].index_copy_(0, rev, hs[1])
            saved += [xc, gi, ghn, hs]

        ctx.time_axis = time_axis
        ctx.bounds = bounds
        ctx.consumed = False
        ctx.save_for_backward(w_in, w_hh, *saved)
        return out.view(batch, height, width, 2 * hid).permute(0, 3, 1, 2)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        if ctx.consumed:
            raise RuntimeError(
                "the fast TSRN GRU path supports a single backward pass (its buffers are reused); "
                "set model.fast_path = False to backpropagate through the same graph twice"
            )
        ctx.consumed = True
        w_in, w_hh, *saved = ctx.saved_tensors
        time_axis, bounds = ctx.time_axis, ctx.bounds
        batch, _, height, width = grad_out.shape
        hid = w_hh.shape[-1]
        h2, h3 = 2 * hid, 3 * hid
        channels = w_in.shape[-1]
        g_t = grad_out.permute(0, 2, 3, 1).unflatten(-1, (2, hid)).movedim(time_axis, 0)  # (T, B, O, 2, h)
        steps, _, other = g_t.shape[:3]
        n_seq = batch * other
        chunk = bounds[0][1] - bounds[0][0]
        half = torch.full((), 0.5, dtype=w_hh.dtype, device=w_hh.device)

        d_w_in = w_in.new_zeros(w_in.shape)
        d_b_in = w_in.new_zeros(2, h3)
        d_w_hh = w_hh.new_zeros(w_hh.shape)
        d_b_hh = w_hh.new_zeros(2, h3)
        # recurrent-side gate gradients of one chunk, kept for its weight-gradient GEMM
        dg_buf = w_hh.new_empty(2, chunk, batch, other, 3, hid)
        gc_buf = grad_out.new_empty(chunk, 2, batch, other, hid)
        dh = w_hh.new_zeros(2, batch, other, hid)
        for c in range(len(bounds) - 1, -1, -1):
            t0, t1 = bounds[c]
            size = t1 - t0
            xc, gi, ghn, hs = saved[4 * c : 4 * c + 4]
            prev_last = saved[4 * c - 1][:, -1] if c > 0 else None
            rev = torch.arange(steps - 1 - t0, steps - 1 - t1, -1, device=grad_out.device)
            gc = gc_buf[:size]
            gc[:, 0].copy_(g_t[t0:t1, :, :, 0])
            torch.index_select(g_t[:, :, :, 1], 0, rev, out=gc[:, 1])
            dgc = dg_buf[:, :size]
            for i in range(size - 1, -1, -1):
                dh.add_(gc[i])
                s = gi[:, i]
                r, z, n = s[..., :hid], s[..., hid:h2], s[..., h2:]
                h_prev = hs[:, i - 1] if i > 0 else prev_last
                dg = dgc[:, i]
                dh_z = dh * z
                # h' = n + z (h - n): dn = dh (1 - z), dz = dh (h - n); with n = 2 sigmoid(p') - 1,
                # dn/dp' = (1 - n^2) / 2 for the doubled pre-activation p'.
                dn_factor = torch.addcmul(half, n, n, value=-0.5)
                h_minus_n = torch.neg(n) if h_prev is None else h_prev - n
                rz_deriv = torch.addcmul(s[..., :h2], s[..., :h2], s[..., :h2], value=-1)
                torch.mul(torch.addcmul(dh, dh, z, value=-1), dn_factor, out=n)  # slot n := d p'_n
                torch.mul(n, ghn[i], out=dg[..., 0, :])
                torch.mul(dh, h_minus_n, out=dg[..., 1, :])
                dg[..., :2, :].mul_(rz_deriv.unflatten(-1, (2, hid)))
                torch.mul(n, r, out=dg[..., 2, :])
                s[..., :h2].copy_(dg[..., :2, :].flatten(-2))  # slots r, z := d p_r, d p_z
                dh = torch.baddbmm(dh_z.view(2, n_seq, hid), dg.view(2, n_seq, h3), w_hh)
                dh = dh.view(2, batch, other, hid)
            # Weight gradients of the chunk as single GEMMs: W_hh from the recurrent-side gate
            # gradients and the previous states, W_in from gi (now the input-side gradients).
            dg_rows = dgc.reshape(2, size * n_seq, h3)
            if size > 1:
                d_w_hh.baddbmm_(dg_rows[:, n_seq:].transpose(1, 2), hs[:, :-1].reshape(2, (size - 1) * n_seq, hid))
            if prev_last is not None:
                d_w_hh.baddbmm_(dg_rows[:, :n_seq].transpose(1, 2), prev_last.reshape(2, n_seq, hid))
            d_b_hh.add_(dg_rows.sum(dim=1))
            gi_rows = gi.view(2, size * n_seq, h3)
            d_w_in.baddbmm_(gi_rows.transpose(1, 2), xc.view(2, size * n_seq, channels))
            d_b_in.add_(gi_rows.sum(dim=1))

        dx = None
        if ctx.needs_input_grad[0]:
            dx = grad_out.new_empty(batch, height, width, channels)
            dx_t = dx.movedim(time_axis, 0)  # (T, B, O, C)
            # direction 0 covers every time index once (copy), then direction 1 adds
            for direction in (0, 1):
                for c, (t0, t1) in enumerate(bounds):
                    size = t1 - t0
                    rows = saved[4 * c + 1][direction].view(size * n_seq, h3)
                    dxc = torch.mm(rows, w_in[direction]).view(size, batch, other, channels)
                    if direction == 0:
                        dx_t[t0:t1].copy_(dxc)
                    else:
                        dx_t[steps - t1 : steps - t0].add_(dxc.flip(0))
            dx = dx.permute(0, 3, 1, 2)
        return dx, d_w_in, d_b_in, d_w_hh, d_b_hh, None


def bigru_2d(x: Tensor, conv: nn.Conv2d, gru: nn.GRU, seq_dim: int) -> Tensor:
    """``gru(conv(x))`` over every row (``seq_dim=3``) or column (``seq_dim=2``) of ``x``.

    ``x`` is (B, C, H, W); ``conv`` a 1x1 convolution C -> C'; ``gru`` a 1-layer
    bidirectional GRU with input C' and hidden C'/2. Returns (B, C', H, W) in channels-last
    memory, holding the forward then backward hidden states of each position: the same as
    TSRN's GRU block with ``nn.GRU`` (for ``seq_dim=2``, with H and W swapped around it).
    """
    if seq_dim not in (2, 3):
        raise ValueError(f"seq_dim must be 2 (columns) or 3 (rows), got {seq_dim}")
    if not (gru.bidirectional and gru.num_layers == 1 and gru.bias and gru.input_size == conv.out_channels):
        raise ValueError("bigru_2d needs a 1-layer bidirectional GRU with biases fed by the conv")
    if conv.kernel_size != (1, 1) or conv.stride != (1, 1) or conv.groups != 1 or x.dim() != 4:
        raise ValueError("bigru_2d needs a 1x1 stride-1 convolution and a (B, C, H, W) input")
    w_in, b_in, w_hh, b_hh = fused_projection(conv, gru)
    return _BiGRU2d.apply(x, w_in, b_in, w_hh, b_hh, seq_dim - 1)
