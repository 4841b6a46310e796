# Copyright (c) varedd_mm contributors. All rights reserved.
"""Cheap linear operations that rebuild what a reduced choice did not compute.

Both ops are linear and per channel, written with plain tensor slicing and a
depthwise ``conv2d`` (no trilinear interpolation, no depthwise 3D conv on the
inference path). Their cost is measured in docs/engine.md.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def num_computed_frames(t_out: int, ratio: int) -> int:
    """Frames a temporal choice computes: positions ``0, R, 2R, ... < T``."""
    return -(-t_out // ratio)


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

    def coefficients(self) -> torch.Tensor:
        """Folded coefficients, shape ``(R - 1, 2, C)``: alpha_q, beta_q."""
        r = self.ratio
        phase = torch.arange(1, r, dtype=self.weight.dtype,
                             device=self.weight.device)
        # interpolation position of taps q-1, q, q+1 -> weight on y[k + 1]
        pos = torch.stack([phase - 1, phase, phase + 1], dim=1) / r
        beta = pos @ self.weight.t()  # (R-1, C)
        alpha = (1 - pos) @ self.weight.t()
        return torch.stack([alpha, beta], dim=1)

    def tail_coefficient(self) -> torch.Tensor:
        """Coefficient on the last computed frame for the held frames."""
        return self.weight.sum(dim=1)

    def forward(self, y: torch.Tensor, t_out: int) -> torch.Tensor:
        """Rebuild the full-rate output.

        Args:
            y (torch.Tensor): Computed frames ``(N, C, T_c, *spatial)`` with
                ``T_c = ceil(t_out / R)``.
            t_out (int): Frames of the full output.

        Returns:
            torch.Tensor: ``(N, C, t_out, *spatial)``.
        """
        r = self.ratio
        t_c = y.shape[2]
        if t_c != num_computed_frames(t_out, r):
            raise ValueError(f'TemporalCheapOp(R={r}): got {t_c} computed '
                             f'frames for t_out={t_out}, expected '
                             f'{num_computed_frames(t_out, r)}')
        shape = (1, self.channels) + (1, ) * (y.dim() - 2)
        coef = self.coefficients()
        tail = self.tail_coefficient().view(shape)
        if torch.is_grad_enabled() and (y.requires_grad
                                        or self.weight.requires_grad):
            return self._forward_autograd(y, t_out, coef, tail, shape)
        return self._forward_inplace(y, t_out, coef, tail, shape)

    def _forward_autograd(self, y, t_out, coef, tail, shape):
        r = self.ratio
        last = y[:, :, -1:] * tail
        phases = [y]
        for q in range(r - 1):
            inner = (y[:, :, :-1] * coef[q, 0].view(shape) +
                     y[:, :, 1:] * coef[q, 1].view(shape))
            phases.append(torch.cat([inner, last], dim=2))
        out = torch.stack(phases, dim=3)  # (N, C, T_c, R, *spatial)
        out = out.flatten(2, 3)
        return out[:, :, :t_out]

    def _forward_inplace(self, y, t_out, coef, tail, shape):
        r = self.ratio
        t_c = y.shape[2]
        out = y.new_empty(y.shape[:2] + (t_out, ) + y.shape[3:])
        out[:, :, ::r] = y
        left, right = y[:, :, :-1], y[:, :, 1:]
        last = y[:, :, -1]
        for q in range(1, r):
            if t_c > 1:
                dst = out[:, :, q:r * (t_c - 1):r]
                torch.mul(left, coef[q - 1, 0].view(shape), out=dst)
                dst.addcmul_(right, coef[q - 1, 1].view(shape))
            pos = r * (t_c - 1) + q
            if pos < t_out:
                torch.mul(last, tail[:, :, 0], out=out[:, :, pos])
        return out

    def macs(self, rebuilt_numel_per_clip: int) -> int:
        """2 MACs per rebuilt element (1 for held frames, counted as 2)."""
        return 2 * rebuilt_numel_per_clip


class ChannelCheapOp(nn.Module):
    """phi_s: generate the channels a channel choice did not compute.

    GhostNet-style: each computed channel feeds ``m = 1/r - 1`` depthwise 3x3
    spatial filters (per frame); generated channel ``g`` comes from computed
    channel ``g // m``. Initialised to copy the source channel (centre tap 1)
    so a fresh op reuses computed features instead of adding noise.

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

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Generate ``C' * m`` channels from ``y``.

        Args:
            y (torch.Tensor): ``(N, C', T, H, W)`` or ``(N, C', H, W)``.

        Returns:
            torch.Tensor: Generated channels, same layout, ``C' * m`` of them.
        """
        if y.dim() == 4:
            return F.conv2d(y, self.weight, padding=1, groups=self.channels)
        n, c, t, h, w = y.shape
        # Fold time into the batch: a depthwise 2D conv per frame is several
        # times faster on CPU than the equivalent depthwise Conv3d.
        y2 = y.transpose(1, 2).reshape(n * t, c, h, w)
        g = F.conv2d(y2, self.weight, padding=1, groups=self.channels)
        return g.reshape(n, t, -1, h, w).transpose(1, 2)

    def macs(self, spatial_numel_per_clip: int) -> int:
        """9 MACs per generated element (``T * H * W`` given per clip)."""
        return 9 * self.channels * self.multiplier * spatial_numel_per_clip
