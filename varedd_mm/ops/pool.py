# Copyright (c) varedd_mm contributors. All rights reserved.
"""Max pooling for CPU inference on NCDHW / NCHW tensors.

torch's CPU max pooling of a contiguous (NCDHW / NCHW) tensor runs a
scalar loop per output element and writes an int64 index per output; on
the stems of I3D, SlowOnly and R(2+1)D-18 it took 5–15 % of the fused
base's op time and up to 29 % of the VA-RED² model's (docs/engine.md,
"Max pooling"). :func:`max_pool_taps` computes the same values one axis
at a time: along an axis with kernel ``k`` the output is the elementwise
maximum of ``k`` strided views of the input (one per tap), each tap
restricted to the outputs whose window it falls in, so the padding of a
max pool (windows reaching past the border, which torch treats as -inf)
needs no padded copy. The maximum is exact, so the output has torch's
values (NaN propagates as in torch; of a tie between -0.0 and +0.0
either may come out, the taps being taken in another order) in the same
memory format.

:func:`fuse_conv_bn` gives every ``nn.MaxPool2d`` / ``nn.MaxPool3d`` of a
model this forward (:class:`InferenceMaxPool2d` / ``3d``), for the base
and the VA-RED² model alike: it is part of the "same execution". It runs
where it is faster: on the CPU, for contiguous inputs, with no gradient
asked for, ``dilation`` 1 and no indices; channels-last
inputs (where torch's kernel is vectorised over channels), CUDA and
training run ``F.max_pool*d``.
"""
import math
from typing import Sequence

import torch
import torch.nn as nn

from .backend import empty_like_layout


def _taps_of(size: int, n_out: int, kernel: int, stride: int, padding: int):
    """``(first output, count, first input)`` of every tap of an axis with
    an input in range for at least one output, the longest first."""
    taps = []
    for j in range(kernel):
        offset = j - padding  # output o reads input o * stride + offset
        first = -(offset // stride) if offset < 0 else 0
        last = min(n_out - 1, (size - 1 - offset) // stride)
        if last >= first:
            taps.append((first, last - first + 1, first * stride + offset))
    return sorted(taps, key=lambda tap: -tap[1])


def _strided(x: torch.Tensor, dim: int, start: int, count: int,
             step: int) -> torch.Tensor:
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, start + (count - 1) * step + 1, step)
    return x[tuple(index)]


def _out_size(size: int, kernel: int, stride: int, padding: int,
              ceil_mode: bool) -> int:
    """torch's pooled length: with ``ceil_mode`` a last, partial window
    counts if it starts inside the input or its left padding."""
    n = (size + 2 * padding - kernel +
         (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (n - 1) * stride >= size + padding:
        n -= 1
    return n


def _max_along(x: torch.Tensor, dim: int, kernel: int, stride: int,
               padding: int, ceil_mode: bool) -> torch.Tensor:
    size = x.size(dim)
    n_out = _out_size(size, kernel, stride, padding, ceil_mode)
    taps = _taps_of(size, n_out, kernel, stride, padding)
    first, count, start = taps[0]
    if count < n_out:  # no tap reaches every window (ceil_mode, or an
        # even kernel with padding kernel // 2)
        shape = list(x.shape)
        shape[dim] = n_out
        out = empty_like_layout(x, shape).fill_(-math.inf)
        rest = taps
    elif len(taps) > 1 and taps[1][1] == n_out:
        out = torch.maximum(
            _strided(x, dim, start, n_out, stride),
            _strided(x, dim, taps[1][2], n_out, stride))
        rest = taps[2:]
    else:
        out = _strided(x, dim, start, n_out, stride).clone()
        rest = taps[1:]
    for first, count, start in rest:
        part = out.narrow(dim, first, count)
        torch.maximum(part, _strided(x, dim, start, count, stride), out=part)
    return out


def max_pool_taps(x: torch.Tensor,
                  kernel_size: Sequence[int],
                  stride: Sequence[int],
                  padding: Sequence[int],
                  ceil_mode: bool = False) -> torch.Tensor:
    """``F.max_pool{1,2,3}d(x, kernel_size, stride, padding, ceil_mode=
    ceil_mode)`` (``dilation`` 1) as a maximum over strided views, axis by
    axis.

    Args:
        x (Tensor): ``(N, C, *spatial)``, any device and memory format.
        kernel_size, stride, padding (sequence of int): One per spatial
            axis (the last ``len(kernel_size)`` axes of ``x``), as torch
            takes them: ``padding <= kernel_size // 2``, and each padded
            axis at least ``kernel_size`` long.
        ceil_mode (bool): torch's ``ceil_mode``: a last window that runs
            past the input (and its padding) still gives an output.

    Returns:
        Tensor: The pooled tensor, a new tensor (never a view of ``x``).
    """
    n = len(kernel_size)
    if not len(stride) == len(padding) == n or not 0 < n < x.dim():
        raise ValueError(
            'max_pool_taps: kernel_size, stride and padding need one value '
            f'per spatial axis of the {x.dim()}-d input, got kernel_size='
            f'{tuple(kernel_size)}, stride={tuple(stride)}, '
            f'padding={tuple(padding)}')
    for k, s, p, size in zip(kernel_size, stride, padding, x.shape[-n:]):
        if k < 1 or s < 1 or not 0 <= p <= k // 2 or size + 2 * p < k:
            raise ValueError(
                'max_pool_taps: each axis needs kernel_size >= 1, stride '
                '>= 1, 0 <= padding <= kernel_size // 2 and a padded size '
                f'>= kernel_size; got kernel_size={tuple(kernel_size)}, '
                f'stride={tuple(stride)}, padding={tuple(padding)} for the '
                f'input of shape {tuple(x.shape)}')
    out = x
    for i, (k, s, p) in enumerate(zip(kernel_size, stride, padding)):
        if k > 1 or s > 1:
            out = _max_along(out, x.dim() - n + i, k, s, p, ceil_mode)
    return out.clone() if out is x else out


def _as_tuple(value, n: int):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, ) * n


class _InferenceMaxPoolMixin:
    """``forward`` of :class:`InferenceMaxPool2d` / ``3d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self._spatial_dims
        if (x.device.type != 'cpu' or x.dim() != n + 2
                or not x.is_contiguous() or self.return_indices
                or _as_tuple(self.dilation, n) != (1, ) * n
                or (torch.is_grad_enabled() and x.requires_grad)):
            return super().forward(x)
        return max_pool_taps(x, _as_tuple(self.kernel_size, n),
                             _as_tuple(self.stride, n),
                             _as_tuple(self.padding, n), self.ceil_mode)


class InferenceMaxPool2d(_InferenceMaxPoolMixin, nn.MaxPool2d):
    """``nn.MaxPool2d`` that pools contiguous CPU inputs at inference with
    :func:`max_pool_taps` (made by :func:`fuse_conv_bn`)."""

    _spatial_dims = 2


class InferenceMaxPool3d(_InferenceMaxPoolMixin, nn.MaxPool3d):
    """``nn.MaxPool3d`` that pools contiguous CPU inputs at inference with
    :func:`max_pool_taps` (made by :func:`fuse_conv_bn`)."""

    _spatial_dims = 3


_INFERENCE_POOLS = {
    nn.MaxPool2d: InferenceMaxPool2d,
    nn.MaxPool3d: InferenceMaxPool3d
}


def use_inference_max_pools(model: nn.Module) -> None:
    """Give every ``nn.MaxPool2d`` / ``nn.MaxPool3d`` of ``model`` (exactly
    these classes; subclasses keep their forward) the forward of
    :class:`InferenceMaxPool2d` / ``3d``. In place."""
    for module in model.modules():
        cls = _INFERENCE_POOLS.get(type(module))
        if cls is not None:
            module.__class__ = cls
