# Copyright (c) varedd_mm contributors. All rights reserved.
"""Cheap linear operations that rebuild what a reduced choice did not compute.

Both ops are linear and per channel, written with plain tensor slicing and a
depthwise ``conv2d`` (no trilinear interpolation, no depthwise 3D conv on the
inference path). Their cost is measured in docs/engine.md.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backend import empty_like_layout, is_channels_last, reduced_conv
from .cache import InferenceCache


def num_computed_frames(t_out: int, ratio: int) -> int:
    """Frames a temporal choice computes: positions ``0, R, 2R, ... < T``."""
    return -(-t_out // ratio)


@torch.no_grad()
def native_terms(channels: int,
                 first_affine: Optional[Tuple[torch.Tensor,
                                              torch.Tensor]] = None,
                 phases: Sequence[tuple] = (),
                 tail: Optional[torch.Tensor] = None,
                 tail_const: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-channel terms of the one-pass rebuild writer
    (:func:`~varedd_mm.ops.native.native_rebuild`), shape ``(2 + 3 (R - 1)
    + 2, C)``: what a computed element (``a0 y + d0``), a rebuilt element
    of phase ``q`` (``a_q y[k] + b_q y[k + 1] + d_q``) and a held element
    (``at y[last] + dt``) are, with the affine of the first channels
    (``first_affine``, a fused BN on raw conv output) folded in.

    ``phases``, ``tail`` and ``tail_const`` are what
    :meth:`TemporalCheapOp.inference_terms` returns (none: no temporal
    rebuild, ``R = 1``)."""
    ref = (
        first_affine[0]
        if first_affine is not None else tail if tail is not None else None)
    kw = dict() if ref is None else dict(dtype=ref.dtype, device=ref.device)
    a0 = torch.ones(channels, **kw)
    d0 = torch.zeros(channels, **kw)
    if first_affine is not None:
        c = first_affine[0].numel()
        a0[:c] = first_affine[0].flatten()
        d0[:c] = first_affine[1].flatten()
    rows = [a0, d0]
    for alpha, beta, const in phases:
        alpha, beta = alpha.flatten(), beta.flatten()
        d = (alpha + beta) * d0
        rows += [
            alpha * a0, beta * a0, d if const is None else d + const.flatten()
        ]
    if tail is None:
        rows += [a0, d0]  # no held frames without a temporal rebuild
    else:
        tail = tail.flatten()
        dt = tail * d0
        rows += [
            tail * a0, dt if tail_const is None else dt + tail_const.flatten()
        ]
    return torch.stack(rows).float().contiguous()


class TemporalCheapOp(nn.Module):
    """phi_t: rebuild the frames a temporal stride ``R`` skipped.

    The computed frames sit at positions ``0, R, 2R, ...`` of the full output
    and are kept exactly as computed. The other frames are rebuilt by linear
    interpolation between their two computed neighbours, followed by a
    learnable per-channel 3-tap temporal filter ``(a, b, d)`` (initialised to
    identity ``(0, 1, 0)``) evaluated at the rebuilt positions. Because both
    steps are linear, a rebuilt frame at phase ``q`` (``R k + q``) is
    ``alpha_q * y[k] + beta_q * y[k + 1]`` with per-channel coefficients
    folded from ``(a, b, d)``; this is what runs, with 2 MACs per rebuilt
    element. Frames after the last computed one (when ``T`` is not a
    multiple of ``R``, and the ``R - 1`` last frames otherwise) hold the last
    computed frame, scaled by ``a + b + d`` (replicate padding).

    Args:
        channels (int): Channels of the output.
        ratio (int): The temporal reduction ``R`` (2 or 4).
    """

    def __init__(self, channels: int, ratio: int) -> None:
        super().__init__()
        if ratio < 2:
            raise ValueError(f'TemporalCheapOp needs ratio >= 2, got {ratio}')
        self.channels = channels
        self.ratio = ratio
        weight = torch.zeros(channels, 3)
        weight[:, 1] = 1.0
        self.weight = nn.Parameter(weight)
        self._cache = InferenceCache()

    def coefficients(self) -> torch.Tensor:
        """Folded coefficients, shape ``(R - 1, 2, C)``: alpha_q, beta_q."""
        r = self.ratio
        phase = torch.arange(
            1, r, dtype=self.weight.dtype, device=self.weight.device)
        # interpolation position of taps q-1, q, q+1 -> weight on y[k + 1]
        pos = torch.stack([phase - 1, phase, phase + 1], dim=1) / r
        beta = pos @ self.weight.t()  # (R-1, C)
        alpha = (1 - pos) @ self.weight.t()
        return torch.stack([alpha, beta], dim=1)

    def tail_coefficient(self) -> torch.Tensor:
        """Coefficient on the last computed frame for the held frames."""
        return self.weight.sum(dim=1)

    def forward(self,
                y: Union[torch.Tensor, Sequence[torch.Tensor]],
                t_out: int,
                first_affine: Optional[Tuple[torch.Tensor,
                                             torch.Tensor]] = None,
                shift: Optional[torch.Tensor] = None,
                cached: bool = False) -> torch.Tensor:
        """Rebuild the full-rate output.

        Args:
            y (Tensor | Sequence[Tensor]): Computed frames
                ``(N, C, T_c, *spatial)`` with ``T_c = ceil(t_out / R)``, or
                channel blocks of it (concatenated along dim 1 by writing
                each into the output, without an extra copy).
            t_out (int): Frames of the full output.
            first_affine (tuple, optional): Inference with a fused BN
                (``fuse.py``): per-channel ``(scale, shift)`` applied to the
                first block as it is written.
            shift (Tensor, optional): Inference with a fused BN: the BN's
                per-channel shift, already in the computed frames; the
                rebuilt frames carry it through the interpolation (a frame
                ``a * y[k] + b * y[k + 1]`` of BN'd frames gets ``shift *
                (1 - a - b)``), so the output equals the BN of the unfused
                rebuild.
            cached (bool): Use the coefficients derived at the first call
                (:meth:`inference_terms`; fused inference models) instead of
                deriving them again.

        Returns:
            torch.Tensor: ``(N, C, t_out, *spatial)``.
        """
        blocks = [y] if isinstance(y, torch.Tensor) else list(y)
        r = self.ratio
        t_c = blocks[0].shape[2]
        if t_c != num_computed_frames(t_out, r):
            raise ValueError(f'TemporalCheapOp(R={r}): got {t_c} computed '
                             f'frames for t_out={t_out}, expected '
                             f'{num_computed_frames(t_out, r)}')
        shape = (1, self.channels) + (1, ) * (blocks[0].dim() - 2)
        fused = first_affine is not None or shift is not None
        if not fused and torch.is_grad_enabled() and (self.weight.requires_grad
                                                      or any(b.requires_grad
                                                             for b in blocks)):
            y = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)
            return self._forward_autograd(y, t_out, self.coefficients(),
                                          self.tail_coefficient().view(shape),
                                          shape)
        dim = len(shape)
        terms = (
            self.inference_terms(dim, shift) if cached else self._build_terms(
                dim, shift))
        return self._forward_inplace(blocks, t_out, terms, first_affine)

    def inference_terms(self, dim: int, shift: Optional[torch.Tensor] = None):
        """What the in-place rebuild multiplies and adds, as broadcast
        tensors for outputs of ``dim`` dimensions: per phase ``q`` the
        coefficients ``(alpha_q, beta_q)`` and the added constant (``shift *
        (1 - alpha_q - beta_q)`` with a fused BN's ``shift``, else
        ``None``), and for the held frames the tail coefficient and
        constant.

        Cached (``cache.py``) until the weight or ``shift`` is replaced or
        changed in place through autograd-visible ops (``load_state_dict``,
        optimizer steps); writes through ``.data`` are not seen, which is
        why only fused inference models, whose weights no longer change,
        read the cache."""
        return self._cache.get(dim, (self.weight, shift),
                               lambda: self._build_terms(dim, shift))

    def native_coef(self,
                    dim: int,
                    shift: Optional[torch.Tensor] = None,
                    first_affine: Optional[Tuple[torch.Tensor,
                                                 torch.Tensor]] = None):
        """:func:`native_terms` of this rebuild (cached like
        :meth:`inference_terms`; fused inference models only)."""
        sources = (self.weight, shift) + tuple(first_affine or ())
        return self._cache.get(
            ('native', dim,
             0 if first_affine is None else first_affine[0].numel()), sources,
            lambda: native_terms(self.channels, first_affine,
                                 *self._build_terms(dim, shift)))

    @torch.no_grad()
    def _build_terms(self, dim, shift):
        shape = (1, self.channels) + (1, ) * (dim - 2)
        coef = self.coefficients().detach()
        tail = self.tail_coefficient().detach().view(shape)[:, :, 0]
        shift = None if shift is None else shift.detach().view(shape)
        phases = []
        for q in range(self.ratio - 1):
            alpha = coef[q, 0].view(shape).contiguous()
            beta = coef[q, 1].view(shape).contiguous()
            const = None if shift is None else shift * (1 - alpha - beta)
            phases.append((alpha, beta, const))
        tail_const = None if shift is None else (
            shift * (1 - tail.unsqueeze(2)))[:, :, 0].contiguous()
        return phases, tail.contiguous(), tail_const

    def _forward_autograd(self, y, t_out, coef, tail, shape):
        r = self.ratio
        last = y[:, :, -1:] * tail
        phases = [y]
        for q in range(r - 1):
            inner = (
                y[:, :, :-1] * coef[q, 0].view(shape) +
                y[:, :, 1:] * coef[q, 1].view(shape))
            phases.append(torch.cat([inner, last], dim=2))
        out = torch.stack(phases, dim=3)  # (N, C, T_c, R, *spatial)
        out = out.flatten(2, 3)
        return out[:, :, :t_out]

    def _forward_inplace(self, blocks, t_out, terms, first_affine=None):
        phases, tail, tail_const = terms
        r = self.ratio
        first = blocks[0]
        t_c = first.shape[2]
        out = empty_like_layout(first, (first.shape[0], self.channels, t_out) +
                                first.shape[3:])
        c0 = 0
        for k, b in enumerate(blocks):
            dst = out[:, c0:c0 + b.shape[1], ::r]
            if k == 0 and first_affine is not None:
                view = (1, -1) + (1, ) * (b.dim() - 2)
                torch.addcmul(
                    first_affine[1].view(view),
                    b,
                    first_affine[0].view(view),
                    out=dst)
            else:
                dst.copy_(b)
            c0 += b.shape[1]
        if c0 != self.channels:
            raise ValueError(f'TemporalCheapOp: blocks hold {c0} channels, '
                             f'expected {self.channels}')
        y = out[:, :, ::r]
        left, right = y[:, :, :-1], y[:, :, 1:]
        last = y[:, :, -1]
        for q in range(1, r):
            alpha, beta, const = phases[q - 1]
            if t_c > 1:
                dst = out[:, :, q:r * (t_c - 1):r]
                if const is None:
                    torch.mul(left, alpha, out=dst)
                else:
                    torch.addcmul(const, left, alpha, out=dst)
                dst.addcmul_(right, beta)
            pos = r * (t_c - 1) + q
            if pos < t_out:
                if tail_const is None:
                    torch.mul(last, tail, out=out[:, :, pos])
                else:
                    torch.addcmul(tail_const, last, tail, out=out[:, :, pos])
        return out

    def macs(self, rebuilt_numel_per_clip: int) -> int:
        """2 MACs per rebuilt element (1 for held frames, counted as 2)."""
        return 2 * rebuilt_numel_per_clip


class ChannelCheapOp(nn.Module):
    """phi_s: generate the channels a channel choice did not compute.

    GhostNet-style: each computed channel feeds ``m = 1/r - 1`` depthwise 3x3
    spatial filters (per frame). Generated channels are ordered block by
    block: channel ``q * C' + c`` (``q < m``) comes from computed channel
    ``c`` through filter ``q``. Initialised to copy the source channel
    (centre tap 1) so a fresh op reuses computed features instead of adding
    noise.

    Args:
        channels (int): Computed channels ``C' = r * C_out``.
        multiplier (int): ``m = 1/r - 1`` (1 or 3).
    """

    def __init__(self, channels: int, multiplier: int) -> None:
        super().__init__()
        self.channels = channels
        self.multiplier = multiplier
        weight = torch.zeros(channels * multiplier, 1, 3, 3)
        weight[:, :, 1, 1] = 1.0
        self.weight = nn.Parameter(weight)
        self._cache = InferenceCache()

    def blocks(self,
               y: torch.Tensor,
               scale: Optional[torch.Tensor] = None,
               shift: Optional[torch.Tensor] = None,
               cached: bool = False) -> List[torch.Tensor]:
        """Generate the ``m`` blocks of ``C'`` channels from ``y``.

        Args:
            y (torch.Tensor): ``(N, C', T, H, W)`` or ``(N, C', H, W)``.
            scale, shift (Tensor, optional): Inference with a fused BN
                (``fuse.py``): the per-channel affine of the layer's whole
                output (``C' * (1 + m)`` channels, the computed ``C'``
                first); the generated channels' part is folded into the
                depthwise filters (the zero padding applies to ``y`` as
                without fusion, so the borders are exact).
            cached (bool): Fused inference models: keep the folded filters
                (built at the first call, rebuilt when the weight or the
                affine is replaced or changed in place, see
                :meth:`TemporalCheapOp.inference_terms`), for NCDHW inputs
                repeated over the frames once per clip length, and run 3D
                channels-last inputs through the reduced convs' dispatch
                (oneDNN's depthwise kernel on the 5D tensor at CPU
                inference).

        Returns:
            list[Tensor]: ``m`` tensors shaped like ``y``.
        """
        c = self.channels
        channels_last = is_channels_last(y) and y.dim() == 5
        if cached:
            filters = self._cache.get(
                channels_last, (self.weight, scale, shift),
                lambda: self._filters(scale, shift, channels_last))
            if channels_last:
                return [
                    reduced_conv(y, w, b, 1, (0, 1, 1), 1, c)
                    for w, b in filters
                ]
        else:
            filters = self._filters(scale, shift, five_d=False)
        if y.dim() == 4:
            return [F.conv2d(y, w, b, padding=1, groups=c) for w, b in filters]
        n, _, t, h, w = y.shape
        if channels_last:
            # channels-last (N, C', T, H, W) is the channels-last image
            # batch (N * T, C', H, W) in memory: a view, no copy
            y2 = y.transpose(1, 2).reshape(n * t, c, h, w)
            return [
                F.conv2d(y2, wq, bq, padding=1,
                         groups=c).reshape(n, t, c, h, w).transpose(1, 2)
                for wq, bq in filters
            ]
        # (N, C', T, H, W) is (N, C' * T, H, W) in memory: one depthwise 2D
        # conv over the C' * T planes (filters repeated over T) needs no
        # transpose copy and is ~10x faster on CPU than folding T into the
        # batch or a depthwise Conv3d (docs/engine.md).

        def repeated(filters):
            return [(wq.repeat_interleave(t, dim=0),
                     None if bq is None else bq.repeat_interleave(t))
                    for wq, bq in filters]

        if cached:  # repeated once per clip length, not every call
            filters = self._cache.get(('repeated', t),
                                      (self.weight, scale, shift),
                                      lambda f=filters: repeated(f))
        else:
            filters = repeated(filters)
        y2 = y.reshape(n, c * t, h, w)
        return [
            F.conv2d(y2, wq, bq, padding=1, groups=c * t).view(n, c, t, h, w)
            for wq, bq in filters
        ]

    def _filters(self, scale, shift, five_d: bool) -> list:
        """``(weight, bias)`` of each block's depthwise filters, with the
        generated channels' affine folded in when given: ``(C', 1, 3, 3)``
        for ``F.conv2d``, or with ``five_d`` ``(C', 1, 1, 3, 3)``
        channels-last filters for the 5D channels-last inference path."""
        c = self.channels
        weights = self.weight.split(c)
        biases = [None] * len(weights)
        if scale is not None:
            if scale.numel() != c * (1 + self.multiplier):
                raise ValueError(
                    f'ChannelCheapOp: the affine has {scale.numel()} '
                    f'channels, expected the layer output\'s '
                    f'{c * (1 + self.multiplier)}')
            weights = [
                w * s.view(-1, 1, 1, 1)
                for w, s in zip(weights, scale[c:].split(c))
            ]
            biases = list(shift[c:].split(c))
        if five_d:
            weights = [
                w.unsqueeze(2).contiguous(memory_format=torch.channels_last_3d)
                for w in weights
            ]
        return list(zip(weights, biases))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """All generated channels, ``(N, C' * m, ...)``."""
        blocks = self.blocks(y)
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)

    def macs(self, spatial_numel_per_clip: int) -> int:
        """9 MACs per generated element (``T * H * W`` given per clip)."""
        return 9 * self.channels * self.multiplier * spatial_numel_per_clip
