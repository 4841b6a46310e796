# Copyright (c) varedd_mm contributors. All rights reserved.
"""Dynamic (2+1)D convolution, a drop-in for mmaction's ``Conv2plus1d``."""
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.model.weight_init import constant_init, kaiming_init
from torch.nn.modules.utils import _triple

from .backend import conv_out_size, memory_format_of, reduced_conv
from .bn import batch_moments, recalibrating, record_bn_input
from .cheap_ops import num_computed_frames
from .config import parse_dynamic_cfg
from .dynamic_base import Choice, DynamicConvMixin
from .fuse import bn_affine, fold_affine


def derive_interp_kernel(weight: torch.Tensor, r: int) -> torch.Tensor:
    """A 3-tap temporal kernel ``w`` (``(C_out, C_in, 3, 1, 1)``) folded
    through linear interpolation: ``w`` read at a frame ``k * r`` of a
    sequence whose frames between ``0, r, 2r, ...`` are interpolated from
    those equals ``[w0 / r, w1 + (1 - 1 / r) * (w0 + w2), w2 / r]`` read at
    the sub-sampled frames ``k - 1, k, k + 1``. Returned in the memory
    layout of ``weight``; autograd flows to ``weight``.

    Args:
        weight (torch.Tensor): The 3-tap kernel (a slice of one is fine).
        r (int): Sub-sampling factor (>= 1); 1 returns ``w`` unchanged.
    """
    if weight.dim() != 5 or weight.shape[2] != 3 or r < 1:
        raise ValueError(
            'derive_interp_kernel needs a (C_out, C_in, 3, 1, 1) kernel and '
            f'r >= 1, got shape {tuple(weight.shape)}, r={r}')
    a = 1.0 / r
    before, centre, after = weight.split(1, dim=2)
    derived = torch.cat(
        [before * a, centre + (1 - a) * (before + after), after * a], dim=2)
    return derived.contiguous(memory_format=memory_format_of(weight))


class VARED2Conv2plus1d(DynamicConvMixin, nn.Module):
    """Dynamic R(2+1)D conv: spatial ``1 x k x k`` conv, BN, ReLU, temporal
    ``k_t x 1 x 1`` conv, with the submodule names of mmaction's
    ``Conv2plus1d`` (``conv_s``, ``bn_s``, ``conv_t``) so its checkpoints
    load unchanged.

    Where the saving comes from: the spatial conv holds ~71 % of the FLOPs of
    R(2+1)D-18, so both choices reach it.

    * Temporal choice ``i`` (``R = 2**i``): the spatial conv runs on every
      ``R``-th input frame only (it is per frame, so these frames are exact),
      then the temporal conv runs on that sub-sampled sequence with its own
      stride. Its taps then span ``R`` frames: the computed output frames
      are an *approximation* of the base output there (not a slice of it,
      unlike a plain conv's), which fine-tuning adapts to. This needs a
      "same"-padded temporal conv (odd ``kernel_size[0]``, ``padding[0] ==
      kernel_size[0] // 2``), so that the conv on the sub-sampled sequence
      yields exactly the frames ``0, R, 2R, ...`` of the output; other
      temporal paddings are refused when ``dims`` has ``'temporal'``.
      With ``dynamic_cfg.temporal_taps='interp'`` (3-tap temporal convs,
      as every R(2+1)D conv has) the temporal conv instead reads the
      spatial output at full frame rate, its skipped frames linearly
      interpolated from the computed ones and those after the last
      computed frame holding it (as the temporal cheap op does), with the
      conv's zero padding beyond the clip. That is linear in the computed
      frames, so it runs as a conv on them with a kernel derived from
      ``conv_t``'s (:func:`derive_interp_kernel`) and one made-up frame at
      each end that gives the padding and the held frames: the conv's
      cost, and taps that keep their time scale.
    * Channel choice ``j``: the spatial conv computes the first
      ``ceil(M / 2**j)`` of its ``M`` mid channels and the temporal conv the
      first ``C_out / 2**j`` filters reading only those mid channels
      (slimmable-style width reduction of both convs).

    Choice (0, 0) is exactly the base ``Conv2plus1d``.

    Args:
        norm_cfg (dict): Norm of the mid channels. Defaults to BN3d.
        dynamic_cfg (dict, optional): See :mod:`varedd_mm.ops.config`.
        Others: as ``nn.Conv3d`` / mmaction's ``Conv2plus1d``.
    """

    _input_dim = 5

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size,
                 stride=1,
                 padding=0,
                 dilation=1,
                 groups: int = 1,
                 bias=True,
                 norm_cfg: dict = dict(type='BN3d'),
                 dynamic_cfg: Optional[dict] = None) -> None:
        super().__init__()
        kernel_size, stride, padding = (_triple(kernel_size), _triple(stride),
                                        _triple(padding))
        if _triple(dilation) != (1, 1, 1) or groups != 1:
            raise ValueError(f'{type(self).__name__} supports dilation=1 and '
                             f'groups=1 only (as mmaction\'s Conv2plus1d), '
                             f'got dilation={dilation}, groups={groups}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        self.bias = bias
        self.norm_cfg = norm_cfg
        self.output_padding = (0, 0, 0)
        self.transposed = False

        # mid-plane width of R(2+1)D (Tran et al., 2018): keeps the
        # parameter count of a 3x k x k conv; computed in floating point
        # with t = 3 as mmaction does, so checkpoints match.
        kt, kh, kw = kernel_size
        mid = int(3 * (in_channels * out_channels * kh * kw) /
                  (in_channels * kh * kw + 3 * out_channels))
        self.mid_channels = mid
        self.conv_s = nn.Conv3d(
            in_channels,
            mid, (1, kh, kw),
            stride=(1, stride[1], stride[2]),
            padding=(0, padding[1], padding[2]),
            bias=bias)
        _, self.bn_s = build_norm_layer(norm_cfg, mid)
        self.relu = nn.ReLU(inplace=True)
        self.conv_t = nn.Conv3d(
            mid,
            out_channels, (kt, 1, 1),
            stride=(stride[0], 1, 1),
            padding=(padding[0], 0, 0),
            bias=bias)
        spec = parse_dynamic_cfg(
            dynamic_cfg,
            has_time=True,
            out_channels=out_channels,
            layer=type(self).__name__)
        if ('temporal' in spec.dims and spec.temporal_taps == 'interp'
                and kt != 3):
            raise ValueError(
                f"{type(self).__name__}: dynamic_cfg.temporal_taps='interp' "
                'needs a 3-tap temporal conv (kernel_size[0] == 3, as every '
                f'R(2+1)D conv has), got kernel_size={kernel_size}; use '
                "temporal_taps='subsample'")
        if 'temporal' in spec.dims and (kt % 2 == 0 or padding[0] != kt // 2):
            raise ValueError(
                f'{type(self).__name__}: temporal choices need a "same"-'
                f'padded temporal conv (odd kernel_size[0] and padding[0] '
                f'== kernel_size[0] // 2), got kernel_size={kernel_size}, '
                f'padding={padding}; use dynamic_cfg.dims=("channel",) to '
                'keep this conv\'s time axis static')
        self._init_dynamic(spec, in_channels, out_channels)
        # conv_s with bn_s folded in (inference only, see fuse_bn)
        self.register_buffer('fused_s_weight', None, persistent=False)
        self.register_buffer('fused_s_bias', None, persistent=False)
        # bn_s's statistics over all choice groups of the batch, while
        # recalibrate_bn runs a grouped forward (see _compute_grouped)
        self._bn_s_batch = None
        self.init_weights()

    def init_weights(self) -> None:
        """Initiate the conv parameters from scratch (as the base)."""
        kaiming_init(self.conv_s)
        kaiming_init(self.conv_t)
        constant_init(self.bn_s, 1, bias=0)

    def mid_width(self, j: int) -> int:
        """Mid channels computed at channel choice ``j``."""
        return -(-self.mid_channels // 2**j)

    # ------------------------------------------------------------------
    def _sizes(self, shape):
        t, h, w = shape[2:]
        kt, kh, kw = self.kernel_size
        h_out = conv_out_size(h, kh, self.stride[1], self.padding[1], 1)
        w_out = conv_out_size(w, kw, self.stride[2], self.padding[2], 1)
        t_out = conv_out_size(t, kt, self.stride[0], self.padding[0], 1)
        return t, t_out, h_out, w_out

    def _choice_macs(self, shape) -> Dict[Choice, int]:
        t, t_out, h, w = self._sizes(shape)
        kt, kh, kw = self.kernel_size
        table = {}
        for i, j in self.choices:
            r = 2**i
            t_s = num_computed_frames(t, r)
            t_c = num_computed_frames(t_out, r)
            m = self.mid_width(j)
            c = self.out_channels >> j
            macs = t_s * h * w * m * self.in_channels * kh * kw  # conv_s
            macs += 2 * t_s * h * w * m  # bn_s (mmengine's eval convention)
            macs += t_c * h * w * c * m * kt  # conv_t
            if self._interp_taps(i):
                macs += 2 * h * w * m  # the made-up end frames
            table[(i, j)] = macs + self._rebuild_macs(i, j, t_c, t_out, h * w)
        return table

    def _bn_s(self, x: torch.Tensor, m: int) -> torch.Tensor:
        """``bn_s`` on the first ``m`` mid channels (its per-channel
        statistics and affine parameters are sliced).

        A group of clips too small for batch statistics (one value per
        channel, e.g. a single clip at 1x1x1 during BN recalibration) is
        normalised with the running statistics, which it leaves unchanged.
        Under :func:`varedd_mm.recalibrate_bn` every call reports what it
        normalises, so the statistics of ``bn_s`` combine all groups of a
        batch, each channel weighted by the elements it saw, and every
        call is normalised with the statistics of the whole batch, all
        choice groups together (not each group with its own: see
        :meth:`_compute_grouped`); a channel that the whole batch gives one
        value, with its running statistics.
        """
        bn = self.bn_s
        single = x.numel() == x.shape[1]
        if recalibrating(bn):
            record_bn_input(bn, x)
            if self._bn_s_batch is not None:  # one group of several
                mean, var = self._bn_s_batch
            elif single:
                mean, var = bn.running_mean, bn.running_var
            else:  # the whole batch in one call: its statistics
                mean = var = None
            use_batch = mean is None
            if mean is not None:
                mean, var = mean[:m], var[:m]
            return F.batch_norm(x, mean, var,
                                None if bn.weight is None else bn.weight[:m],
                                None if bn.bias is None else bn.bias[:m],
                                use_batch, 0.0, bn.eps)
        if m == self.mid_channels and not (bn.training and single):
            return bn(x)
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
            raise TypeError(f'{type(self).__name__}: channel reduction needs '
                            f'a BatchNorm as bn_s, got {type(bn).__name__}')
        use_batch = (bn.training or not bn.track_running_stats) and not single
        momentum = bn.momentum
        if use_batch and bn.training and bn.track_running_stats:
            record_bn_input(bn, x)
            bn.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative average, as nn.BatchNorm
                momentum = 1.0 / float(bn.num_batches_tracked)
        return F.batch_norm(
            x, None if bn.running_mean is None else bn.running_mean[:m],
            None if bn.running_var is None else bn.running_var[:m],
            None if bn.weight is None else bn.weight[:m],
            None if bn.bias is None else bn.bias[:m], use_batch,
            0.0 if momentum is None else momentum, bn.eps)

    def _output_conv(self) -> nn.Module:
        return self.conv_t

    def fuse_bn(self, bn: Optional[nn.Module]) -> None:
        """Fold ``bn_s`` into ``conv_s`` and ``bn`` (the BN after this
        conv, if any) into the output, for inference (see
        :meth:`DynamicConvMixin.fuse_bn`)."""
        if not isinstance(self.bn_s, nn.modules.batchnorm._BatchNorm):
            raise TypeError(f'{type(self).__name__}: fusing needs a '
                            f'BatchNorm as bn_s, got {type(self.bn_s)}')
        self.fused_s_weight, self.fused_s_bias = fold_affine(
            self.conv_s.weight, self.conv_s.bias, *bn_affine(self.bn_s))
        super().fuse_bn(bn)

    def _interp_taps(self, i: int) -> bool:
        return i > 0 and self.dynamic_spec.temporal_taps == 'interp'

    def _conv_t(self,
                s: torch.Tensor,
                i: int,
                j: int,
                t_in: int,
                residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The temporal conv at choice ``(i, j)`` on the spatial output
        ``s`` of a ``t_in``-frame input (already sub-sampled for ``i``);
        at (0, 0) of a fused model it also applies ``residual`` and the
        ReLU after it (:meth:`forward`)."""
        c, m = self.out_channels >> j, self.mid_width(j)
        conv = self.conv_t
        final = i == j == 0  # the output needs no rebuild
        if residual is not None and not final:
            raise ValueError('_conv_t: a residual is applied at (0, 0) only')
        relu = final and self._out_relu(residual)
        if self.fused_weight is not None and j == 0:
            # no channel rebuild: the BN after this conv folds in
            full, bias = self.fused_weight, self.fused_bias
        elif j == 0 and not self._interp_taps(i):
            if self.fused_for_inference:  # as fuse.py runs a base conv_t
                return reduced_conv(s, conv.weight, conv.bias, conv.stride,
                                    conv.padding, 1, 1, relu, residual)
            return conv(s)
        else:
            full = conv.weight
            bias = None if conv.bias is None else conv.bias[:c]
        weight = full
        if j > 0 and self.fused_for_inference:
            # the sliced filters, dense once rather than copied every call
            weight = self._inference_cache.get(
                ('t_weight', j), (full, ), lambda: full[:c, :m].contiguous(
                    memory_format=memory_format_of(full)))
        elif j > 0:
            weight = full[:c, :m]
        if not self._interp_taps(i):
            # at (0, 0) the output is final: the fused ReLU (and residual)
            # as post-ops
            return reduced_conv(s, weight, bias, conv.stride, conv.padding, 1,
                                1, relu, residual)
        r = 2**i
        if self.fused_for_inference:
            sliced = weight
            weight = self._inference_cache.get(
                ('interp_taps', i, j), (full, ),
                lambda: derive_interp_kernel(sliced, r))
        else:
            weight = derive_interp_kernel(weight, r)
        # made-up computed frames at both ends: the interpolated frame they
        # produce next to the clip is 0 beyond it (the conv's padding) and,
        # after the last computed frame, that frame held where the clip goes on
        first, last = s[:, :, :1], s[:, :, -1:]
        held = t_in - 1 > (s.shape[2] - 1) * r
        s = torch.cat([first * (1 - r), s, last if held else last * (1 - r)],
                      dim=2)
        return reduced_conv(s, weight, bias, conv.stride, (0, 0, 0), 1, 1)

    def _spatial(self, x: torch.Tensor, m: int, r: int = 1) -> torch.Tensor:
        """``relu(bn_s(conv_s(x[:, :, ::r])))`` on the first ``m`` mid
        channels. ``conv_s`` is ``1×k×k`` with temporal stride 1 and no
        temporal padding, so every ``r``-th frame is its output at temporal
        stride ``r``: the conv reads them in place (no gathered copy of the
        input, which channels-last inputs of few channels make slow)."""
        conv = self.conv_s
        stride = (r * conv.stride[0], ) + tuple(conv.stride[1:])
        if self.fused_s_weight is not None:
            # the inner ReLU as a post-op, as fuse.py runs the base's
            return reduced_conv(x, self.fused_s_weight[:m],
                                self.fused_s_bias[:m], stride, conv.padding, 1,
                                1, True)
        return self.relu(self._bn_s(self._spatial_conv(x, m, r), m))

    def _spatial_conv(self, x: torch.Tensor, m: int, r: int) -> torch.Tensor:
        """``conv_s(x[:, :, ::r])`` on the first ``m`` mid channels (what
        ``bn_s`` normalises in :meth:`_spatial`)."""
        conv = self.conv_s
        stride = (r * conv.stride[0], ) + tuple(conv.stride[1:])
        if m < self.mid_channels:
            bias = None if conv.bias is None else conv.bias[:m]
            return reduced_conv(x, conv.weight[:m], bias, stride, conv.padding,
                                1, 1)
        return reduced_conv(x, conv.weight, conv.bias, stride, conv.padding, 1,
                            1)

    def _compute_grouped(
            self,
            x: torch.Tensor,
            choice: torch.Tensor,
            residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Under :func:`varedd_mm.recalibrate_bn`, ``bn_s`` (reached once per
        choice group) normalises every group with the statistics of all
        groups of the batch, as a BN called once would: normalised with its
        own statistics, each group would be centred on itself, and where
        the policy groups the clips by content (still clips reduced, moving
        ones not: the point of an adaptive policy) the BNs after this conv
        would be estimated on activations inference never produces
        (docs/engine.md, "Normalisation"). That takes one more ``conv_s``
        per group, in the pass only."""
        if not recalibrating(self.bn_s) or self.fused_s_weight is not None:
            return super()._compute_grouped(x, choice, residual)
        kc = self.dynamic_spec.num_channel
        key = choice[:, 0] * kc + choice[:, 1]
        keys = key.unique().tolist()
        if len(keys) == 1:  # one call on the whole batch
            return super()._compute_grouped(x, choice, residual)
        parts = []
        with torch.no_grad():
            for k in keys:
                sub = x[key == k]
                parts.append(
                    self._spatial_conv(sub, self.mid_width(k % kc),
                                       2**(k // kc)))
        bn = self.bn_s
        self._bn_s_batch = batch_moments(parts, bn.running_mean,
                                         bn.running_var)
        try:
            return super()._compute_grouped(x, choice, residual)
        finally:
            self._bn_s_batch = None

    def _compute(self,
                 x: torch.Tensor,
                 i: int,
                 j: int,
                 into=None,
                 residual=None) -> Optional[torch.Tensor]:
        if i == 0 and j == 0:
            if self.fused_s_weight is not None:
                if into is not None:  # the caller adds a residual
                    residual = None
                return self._conv_t(
                    self._spatial(x, self.mid_channels), 0, 0, x.shape[2],
                    residual)
            s = self._bn_s(self.conv_s(x), self.mid_channels)
            return self.conv_t(self.relu(s))
        t_in, t_out = self._sizes(x.shape)[:2]
        y = self._conv_t(self._spatial(x, self.mid_width(j), 2**i), i, j, t_in)
        return self._rebuild(y, i, j, t_out, into, residual)

    def _compute_all(self, x: torch.Tensor) -> Dict[Choice, torch.Tensor]:
        # conv_s is per frame and BN per channel: every choice's spatial
        # output is a slice of the full one (exact in eval mode; in train
        # mode the batch statistics come from all frames).
        s_full = self.relu(self.bn_s(self.conv_s(x)))
        t_out = self._sizes(x.shape)[1]
        outs = {}
        for i, j in self.choices:
            s = s_full[:, :self.mid_width(j), ::2**i]
            y = self._conv_t(s, i, j, x.shape[2])
            outs[(i, j)] = y if (i,
                                 j) == (0,
                                        0) else self._rebuild(y, i, j, t_out)
        return outs
