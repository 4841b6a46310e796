# Copyright (c) varedd_mm contributors. All rights reserved.
"""Conv arithmetic and the backend dispatch of the reduced convs."""
import weakref
from typing import Optional

import torch
import torch.nn.functional as F

from .cache import stamp


def conv_out_size(size: int, kernel: int, stride: int, padding: int,
                  dilation: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4D/5D tensor (or a strided view of one) keeps its channels
    innermost in memory (``torch.channels_last`` / ``channels_last_3d``)."""
    return x.dim() in (4, 5) and x.shape[1] > 1 and x.stride(1) == 1


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """The memory format new tensors shaped like ``x`` should take."""
    if not is_channels_last(x):
        return torch.contiguous_format
    return torch.channels_last if x.dim() == 4 else torch.channels_last_3d


def empty_like_layout(ref: torch.Tensor, shape) -> torch.Tensor:
    """An uninitialised tensor of ``shape`` with ``ref``'s dtype, device and
    memory format (the rebuilds keep a channels-last model channels-last)."""
    return torch.empty(
        tuple(shape),
        dtype=ref.dtype,
        device=ref.device,
        memory_format=memory_format_of(ref))


def canonical_strides(y: torch.Tensor,
                      fmt: torch.memory_format) -> torch.Tensor:
    """``y``, dense in memory format ``fmt``, as a view with that format's
    standard strides. Strides of size-1 dims carry no information, but ops
    read them: a batch-1 channels-last output with a batch stride of ``C``
    (as oneDNN's fused conv and ``unflatten`` can return) makes
    ``max_pool3d`` see an NCDHW tensor and write its output, and everything
    after it, in that layout. Returns ``y`` itself unless only size-1 dims'
    strides differ (a tensor not dense in ``fmt`` is left alone)."""
    if y.dim() not in (4, 5) or not y.is_contiguous(memory_format=fmt):
        return y
    if fmt == torch.contiguous_format:
        order = list(range(y.dim() - 1, -1, -1))
    else:  # C, W, H, (T), N
        order = [1] + list(range(y.dim() - 1, 1, -1)) + [0]
    strides, step = [0] * y.dim(), 1
    for d in order:
        strides[d] = step
        step *= y.shape[d]
    strides = tuple(strides)
    return y if y.stride() == strides else y.as_strided(y.shape, strides)


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled('cpu')
    except TypeError:  # older torch
        return torch.is_autocast_cpu_enabled()


def _onednn_applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    # under CPU autocast F.conv* casts, the direct oneDNN call would not:
    # every choice must come out in the same dtype
    return (x.device.type == 'cpu' and x.dtype == torch.float32
            and not _cpu_autocast() and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled and not torch.jit.is_tracing()
            and not torch.compiler.is_compiling()
            and not (torch.is_grad_enabled() and
                     (x.requires_grad or weight.requires_grad)))


def _conv_format(x: torch.Tensor, weight: torch.Tensor) -> torch.memory_format:
    """The memory format to run a conv in: the input's, unless the input is
    laid out both ways (every dim after C of size 1, or C of 1), where the
    weight's current layout needs no copy per call."""
    fmt = memory_format_of(x)
    if x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last if x.dim() ==
            4 else torch.channels_last_3d):
        return memory_format_of(weight)
    return fmt


#: packed (oneDNN-layout) weights, by the id of the tensor they were made
#: from (a parameter, or the base of a weight slice): (weak reference to
#: it, its :func:`~.cache.stamp` when they were made, {conv key: packed
#: weight}); an entry goes when its tensor does
_PACKED = {}
#: packed weights kept per tensor (input shapes x choices)
_MAX_PACKED = 16


def _forget(key):

    def forget(_):
        _PACKED.pop(key, None)

    return forget


def packed_weight(weight: torch.Tensor, padding, stride, dilation, groups: int,
                  input_shape) -> torch.Tensor:
    """``weight`` (channels-last, or a slice of a channels-last weight) in
    the layout oneDNN's conv for this input shape reads, made once.

    oneDNN reorders a plain weight into its blocked layout on every call;
    where the input is small and the weight large (the last stages of a
    video backbone at batch 1) that reorder takes longer than the conv
    (docs/engine.md, "Packed weights"). The conv's output is the same, bit
    for bit. The packed weights of a source tensor are kept per slice, conv
    parameters and input shape, batch size aside (at most ``_MAX_PACKED``,
    then they are made again) while the tensor stands unchanged: a change
    of its :func:`~.cache.stamp` (an in-place change such as loading other
    weights or an optimizer step, new ``.data``) drops them, and so does
    freeing it. The weight itself is returned, unpacked, for a tensor made
    under ``torch.inference_mode`` (no version counter tells whether it
    changed). It costs memory: up to one packed copy per weight slice and
    input shape run."""
    base = weight if weight._base is None else weight._base
    if base.is_inference():
        return weight
    version = stamp(base)
    entry = _PACKED.get(id(base))
    if entry is None or entry[0]() is not base or entry[1] != version:
        entry = (weakref.ref(base, _forget(id(base))), version, {})
        _PACKED[id(base)] = entry
    packs = entry[2]
    # one pack for every batch size (the groups of clips that share a
    # choice change size from batch to batch): the pack made for one runs
    # as fast at the others (docs/engine.md, "Packed weights")
    key = (weight.storage_offset(), tuple(weight.shape), weight.stride(),
           tuple(padding), tuple(stride), tuple(dilation), groups,
           tuple(input_shape[1:]))
    packed = packs.get(key)
    if packed is None:
        if len(packs) >= _MAX_PACKED:
            packs.clear()
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            weight, list(padding), list(stride), list(dilation), groups,
            list(input_shape))
        packs[key] = packed
    return packed


def reduced_conv(x: torch.Tensor,
                 weight: torch.Tensor,
                 bias: Optional[torch.Tensor],
                 stride,
                 padding,
                 dilation,
                 groups: int,
                 relu: bool = False,
                 residual: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``F.conv2d``/``F.conv3d`` for the reduced choices.

    At inference on CPU it calls oneDNN directly: aten's dispatch sends
    batch-1 inputs with ``N*C*T*H <= 20480`` to its native ``slow_conv3d``
    (a heuristic "native is faster" that is 3x slower here, measured in
    docs/engine.md), and the reduced choices, with fewer channels and
    frames, fall under that limit far more often than the base convs.
    Training, tracing (FLOPs counters), CPU autocast and every other device
    (CUDA included) use ``F.conv*d``. A channels-last input keeps its layout
    (oneDNN then needs no reorder of input and output), and a channels-last
    conv with ``groups == 1`` reads its weight packed in oneDNN's layout
    (:func:`packed_weight`, made once, not reordered on every call; NCDHW
    inputs keep the plain weight: a packed one makes oneDNN pick another
    output layout there).

    ``relu=True`` applies a ReLU to the output: through oneDNN as a post-op
    of the conv (no second pass over the output; fused inference models,
    ``fuse.py``), elsewhere in place after the conv. ``residual`` (shaped
    like the output) is added before that ReLU, as a residual block's sum:
    through oneDNN as a binary post-op where oneDNN fuses one (channels-last
    and ``groups == 1``; for other convs torch's binary op runs its own
    conv dispatch and then the sum), else in one in-place pass after the
    conv (``aten::_add_relu_`` on the CPU).
    """
    dims = x.dim() - 2
    if _onednn_applies(x, weight):

        def as_list(v):
            return list(v) if isinstance(v, (tuple, list)) else [v] * dims

        fmt = _conv_format(x, weight)
        x = x.contiguous(memory_format=fmt)
        # a channels-last conv reads its weight packed (made once)
        packed = (
            fmt != torch.contiguous_format and groups == 1
            and weight.is_contiguous(memory_format=fmt))
        if packed:
            weight = packed_weight(weight, as_list(padding), as_list(stride),
                                   as_list(dilation), groups, x.shape)
        else:
            weight = weight.contiguous(memory_format=fmt)
        if residual is not None and groups == 1 and (
                fmt != torch.contiguous_format):
            residual = residual.contiguous(memory_format=fmt)
            return canonical_strides(
                torch.ops.mkldnn._convolution_pointwise.binary(
                    x, residual, weight, bias, as_list(padding),
                    as_list(stride), as_list(dilation), groups, 'add', None,
                    'relu' if relu else None, [], None), fmt)
        if residual is not None:
            y = torch.ops.aten.mkldnn_convolution(x, weight, bias,
                                                  as_list(padding),
                                                  as_list(stride),
                                                  as_list(dilation), groups)
            if relu:
                return torch.ops.aten._add_relu_(y, residual)
            return y.add_(residual)
        if relu or packed:  # (aten's entry takes no packed weight)
            return canonical_strides(
                torch.ops.mkldnn._convolution_pointwise(
                    x, weight, bias, as_list(padding), as_list(stride),
                    as_list(dilation), groups, 'relu' if relu else 'none', [],
                    None), fmt)
        return torch.ops.aten.mkldnn_convolution(x, weight, bias,
                                                 as_list(padding),
                                                 as_list(stride),
                                                 as_list(dilation), groups)
    conv = F.conv3d if dims == 3 else F.conv2d
    y = conv(x, weight, bias, stride, padding, dilation, groups)
    if residual is not None:
        y = y.add_(residual)
    return y.relu_() if relu else y
