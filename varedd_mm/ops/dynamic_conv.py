# Copyright (c) varedd_mm contributors. All rights reserved.
"""The plain VA-RED² dynamic convs, ``VARED2Conv3d`` and ``VARED2Conv2d``.

The policy machinery (gate, training expectation, grouped inference, cost
records) is :class:`~varedd_mm.ops.dynamic_base.DynamicConvMixin`; the
(2+1)D conv is in ``conv2plus1d.py``. A plain conv's reduced choices are
exact on what they compute: temporal stride ``R * S`` gives exactly the full
conv's frames ``0, R, 2R, ...`` (any padding) and the first ``C_out / 2**j``
filters give the first channels, so at training time the full conv runs
once and every choice is a slice of it plus its cheap rebuild.

Normalisation: the base model's BN stays where it is, after the rebuilt
output, shared by all choices (base checkpoints load, (0, 0) stays exact).
Training-time BN sees the soft mixture of choices, inference one hard
choice per clip: :func:`varedd_mm.recalibrate_bn` re-estimates the running
statistics under the hard policy (``bn.py``).
"""
import math
from typing import Dict, Optional

import torch
import torch.nn as nn

# re-exported: the import path of earlier versions
from .backend import conv_out_size, reduced_conv  # noqa: F401
from .cheap_ops import num_computed_frames
from .config import parse_dynamic_cfg
from .dynamic_base import Choice, DynamicConvMixin


def _check_padding(layer: str, padding, padding_mode: str) -> None:
    """Reduced choices call ``F.conv*d`` with integer zero padding."""
    if padding_mode != 'zeros' or isinstance(padding, str):
        raise ValueError(
            f'{layer} supports padding_mode="zeros" with integer padding '
            f'only, got padding_mode={padding_mode!r}, padding={padding!r}')


class _PlainDynamicConv(DynamicConvMixin):
    """A dynamic ``nn.Conv3d`` / ``nn.Conv2d`` (the torch class follows in
    the MRO). 2D convs have no time axis: channel choices only."""

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size,
                 stride=1,
                 padding=0,
                 dilation=1,
                 groups: int = 1,
                 bias: bool = True,
                 padding_mode: str = 'zeros',
                 dynamic_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        _check_padding(type(self).__name__, padding, padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, padding_mode,
                         **kwargs)
        has_time = self._input_dim == 5
        cfg = dict(dynamic_cfg or {})
        if not has_time:
            cfg.setdefault('dims', ('channel', ))
        spec = parse_dynamic_cfg(
            cfg,
            has_time=has_time,
            out_channels=out_channels,
            groups=groups,
            layer=type(self).__name__)
        self._init_dynamic(spec, in_channels, out_channels)

    def _out_size(self, shape):
        return tuple(
            conv_out_size(s, k, st, p, d)
            for s, k, st, p, d in zip(shape[2:], self.kernel_size, self.stride,
                                      self.padding, self.dilation))

    def _choice_macs(self, shape) -> Dict[Choice, int]:
        out = self._out_size(shape)
        t_out = out[0] if self._input_dim == 5 else 1
        plane = math.prod(out[1:]) if self._input_dim == 5 else math.prod(out)
        per_output = (self.in_channels // self.groups) * math.prod(
            self.kernel_size)
        table = {}
        for i, j in self.choices:
            t_c = num_computed_frames(t_out, 2**i)
            macs = t_c * plane * (self.out_channels >> j) * per_output
            table[(i, j)] = macs + self._rebuild_macs(i, j, t_c, t_out, plane)
        return table

    def _output_conv(self) -> nn.Module:
        return self

    def _compute(self,
                 x: torch.Tensor,
                 i: int,
                 j: int,
                 into=None,
                 residual=None) -> Optional[torch.Tensor]:
        fused = self.fused_weight is not None
        if i == 0 and j == 0:
            if fused:  # what the fused base conv runs (fuse.py)
                if into is not None:  # the caller adds a residual
                    residual = None
                return reduced_conv(x, self.fused_weight, self.fused_bias,
                                    self.stride, self.padding,
                                    self.dilation, self.groups,
                                    self._out_relu(residual), residual)
            y = self._conv_forward(x, self.weight, self.bias)
            if residual is not None and into is None:  # no BN was folded
                return y.add_(residual).relu_()
            return y
        c = self.out_channels >> j
        if fused and j == 0:  # no channel rebuild: the BN folds in
            weight, bias = self.fused_weight, self.fused_bias
        else:
            weight = self.weight[:c]
            bias = None if self.bias is None else self.bias[:c]
        groups = self.groups
        if groups > 1 and j > 0:
            # whole groups: the first groups / 2**j read only their inputs
            groups >>= j
            x = x[:, :self.in_channels >> j]
        t_out, stride = None, self.stride
        if self._input_dim == 5:
            t_out = self._out_size(x.shape)[0]
            # temporal stride R * S gives exactly the full conv's frames
            # 0, R, 2R, ...; oneDNN turns the stride into proportional time
            # on CPU (docs/engine.md), so no gather is needed
            stride = (self.stride[0] * 2**i, ) + tuple(self.stride[1:])
        y = reduced_conv(x, weight, bias, stride, self.padding, self.dilation,
                         groups)
        return self._rebuild(y, i, j, t_out, into, residual)

    def _compute_all(self, x: torch.Tensor) -> Dict[Choice, torch.Tensor]:
        full = self._conv_forward(x, self.weight, self.bias)
        t_out = full.shape[2] if self._input_dim == 5 else None
        outs = {}
        for i, j in self.choices:
            if i == 0 and j == 0:
                outs[(i, j)] = full
                continue
            y = full[:, :self.out_channels >> j]
            if i > 0:
                y = y[:, :, ::2**i]
            outs[(i, j)] = self._rebuild(y, i, j, t_out)
        return outs


class VARED2Conv3d(_PlainDynamicConv, nn.Conv3d):
    """Dynamic ``nn.Conv3d`` (same signature, plus ``dynamic_cfg``).

    Keeps ``weight``/``bias`` of ``nn.Conv3d``, so base checkpoints, mmcv's
    ``ConvModule`` and mmaction's init code treat it as the base conv.
    Temporal choice ``i`` runs the conv with temporal stride ``2**i * S``;
    channel choice ``j`` runs the first ``C_out / 2**j`` filters (for grouped
    convs: the first ``groups / 2**j`` groups, reading only their own input
    channels).

    Args:
        dynamic_cfg (dict, optional): See :mod:`varedd_mm.ops.config`.
        Others: as ``nn.Conv3d`` (``padding_mode='zeros'``, integer
            padding).
    """

    _input_dim = 5


class VARED2Conv2d(_PlainDynamicConv, nn.Conv2d):
    """Dynamic ``nn.Conv2d``: channel choices only (no time axis).

    For segmentation backbones (mmseg's ResNetV1c through ``conv_cfg``).

    Args:
        dynamic_cfg (dict, optional): See :mod:`varedd_mm.ops.config`;
            ``dims`` defaults to ``('channel', )`` and may hold nothing
            else.
        Others: as ``nn.Conv2d`` (``padding_mode='zeros'``, integer
            padding).
    """

    _input_dim = 4
