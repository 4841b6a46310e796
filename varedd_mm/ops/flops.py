# Copyright (c) varedd_mm contributors. All rights reserved.
"""Realised per-clip cost of a forward: ``track_flops`` and
``clip_gflops``.

"GFLOPs" here, as in this literature and mmengine's counter, are
multiply-accumulates (MACs) / 1e9. The static layers are counted with
mmengine's ``FlopAnalyzer`` conventions (conv and linear: MACs; batch norm:
2 per element in eval, 5 in train; group/layer norm: 5 per element;
adaptive average pooling: 1 per input element), so that with every gate
forced to (0, 0) ``clip_gflops`` and ``get_model_complexity_info`` agree.
Dynamic layers report their own per-clip cost: the reduced conv of the
choice each clip took, its cheap rebuild ops and its gate.
"""
import math
from collections import defaultdict
from typing import Dict, List

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm

from .dynamic_base import DynamicConvMixin
from .fuse import reads_shapes_only

_TRACKER_ATTR = '_varedd_flops_tracker'

_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)


def static_module_macs(module: nn.Module, inputs, output) -> int:
    """MACs of one call of a static module (0 for modules not counted)."""
    x = inputs[0] if inputs else None
    if not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor):
        return 0
    if isinstance(module, _ConvNd):
        kernel = math.prod(module.kernel_size)
        if module.transposed:
            return x.numel() * (module.out_channels // module.groups) * kernel
        macs = output.numel() * (module.in_channels // module.groups) * kernel
        return macs + folded_bn_macs(module, output)
    if isinstance(module, nn.Linear):
        return x.numel() * module.out_features
    if isinstance(module, _BatchNorm):
        affine = module.weight is not None
        if module.training:
            return x.numel() * (5 if affine else 4)
        return x.numel() * (2 if affine else 1)
    if isinstance(module, (nn.GroupNorm, nn.LayerNorm, _InstanceNorm)):
        affine = getattr(module, 'weight', None) is not None
        return x.numel() * (5 if affine else 4)
    if isinstance(module, _POOLS):
        return x.numel()
    return 0


def folded_bn_macs(module: nn.Module, output: torch.Tensor) -> int:
    """MACs of the eval-mode BN that :func:`~varedd_mm.ops.fuse_conv_bn`
    folded into ``module`` (its ``folded_bn_affine``), counted on
    ``module``'s output as they were on the BN's input (which it equals in
    size), so that a fused model reports the cost of the model it was made
    from; 0 where no BN was folded."""
    affine = getattr(module, 'folded_bn_affine', None)
    if affine is None:
        return 0
    return output.numel() * (2 if affine else 1)


_COUNTED = (_ConvNd, nn.Linear, _BatchNorm, nn.GroupNorm, nn.LayerNorm,
            _InstanceNorm) + _POOLS


class FlopsTracker:
    """Forward hooks that record the realised cost of each forward of a
    model. Attach with :func:`track_flops`; read with :func:`clip_gflops`.
    """

    def __init__(self, model: nn.Module) -> None:
        self.static_macs = 0
        self.dynamic: Dict[int, List[torch.Tensor]] = defaultdict(list)
        self.choices: Dict[int, List[torch.Tensor]] = defaultdict(list)
        self.root_batch = None
        self.forwards = 0
        inside_dynamic = set()
        for m in model.modules():
            if isinstance(m, DynamicConvMixin):
                inside_dynamic.update(id(c) for c in m.modules())
                m.register_forward_hook(self._dyn_hook)
        for m in model.modules():
            if id(m) not in inside_dynamic and isinstance(m, _COUNTED):
                m.register_forward_hook(self._static_hook)
        model.register_forward_pre_hook(self._root_hook, with_kwargs=True)

    def detach(self, model: nn.Module) -> None:
        """Remove this record's hooks from the modules of ``model``. They
        are found by what they are bound to, not through removable
        handles: a deep copy of a tracked model holds a copy of the record,
        bound to the copy's hooks, and handles copied with it would point
        into the original's modules."""
        for m in model.modules():
            for hooks in (m._forward_hooks, m._forward_pre_hooks):
                for key, hook in list(hooks.items()):
                    if getattr(hook, '__self__', None) is self:
                        del hooks[key]
                        m._forward_hooks_with_kwargs.pop(key, None)
                        m._forward_hooks_always_called.pop(key, None)
                        m._forward_pre_hooks_with_kwargs.pop(key, None)

    @reads_shapes_only
    def _root_hook(self, module, args, kwargs):
        self.static_macs = 0
        self.dynamic = defaultdict(list)
        self.choices = defaultdict(list)
        self.root_batch = None
        for v in list(args) + list(kwargs.values()):
            if isinstance(v, torch.Tensor) and v.dim() > 0:
                self.root_batch = v.shape[0]
                break
        self.forwards += 1

    @reads_shapes_only
    def _static_hook(self, module, inputs, output):
        self.static_macs += static_module_macs(module, inputs, output)

    @reads_shapes_only
    def _dyn_hook(self, module, inputs, output):
        # a folded BN costs what it cost unfused, whatever the choice
        self.static_macs += folded_bn_macs(module, output)
        self.dynamic[id(module)].append(module.last_macs)
        self.choices[id(module)].append(module.last_choice)

    def per_clip_macs(self) -> torch.Tensor:
        """Realised MACs of each clip of the last forward, float64."""
        if self.forwards == 0:
            raise RuntimeError('clip_gflops: the model has not run a forward '
                               'since track_flops() was attached')
        per_layer = [torch.cat(v) for v in self.dynamic.values()]
        if per_layer:
            n = per_layer[0].numel()
            if any(p.numel() != n for p in per_layer):
                raise RuntimeError(
                    'clip_gflops: dynamic layers saw different numbers of '
                    'clips in the last forward; per-clip costs are '
                    'undefined for this model')
            total = torch.stack(per_layer).sum(dim=0)
        else:
            if self.root_batch is None:
                raise RuntimeError('clip_gflops: cannot tell the batch size '
                                   'of the last forward')
            n = self.root_batch
            total = torch.zeros(n, dtype=torch.float64)
        return total + self.static_macs / n


def track_flops(model: nn.Module) -> FlopsTracker:
    """Attach (once) the hooks :func:`clip_gflops` reads; returns them.

    Call it once after building the model and before the forwards you want
    to measure. The VA-RED² tools and runner hooks attach it themselves.
    """
    tracker = getattr(model, _TRACKER_ATTR, None)
    if tracker is None:
        tracker = FlopsTracker(model)
        object.__setattr__(model, _TRACKER_ATTR, tracker)
    return tracker


def untrack_flops(model: nn.Module) -> None:
    """Remove the hooks of :func:`track_flops` (of a deep copy too: that
    never touches the model it was copied from)."""
    tracker = getattr(model, _TRACKER_ATTR, None)
    if tracker is not None:
        tracker.detach(model)
        object.__delattr__(model, _TRACKER_ATTR)


def clip_gflops(model: nn.Module) -> torch.Tensor:
    """Realised GFLOPs (multiply-adds / 1e9) of each clip of the last
    forward of ``model``: every conv, linear, norm, cheap op and gate,
    dynamic and static, each clip with its own choices.

    Args:
        model (nn.Module): A model :func:`track_flops` was attached to
            before its last forward.

    Returns:
        torch.Tensor: float64, shape ``(batch, )``, one value per clip, on
        the device the dynamic layers ran on (no host-device sync).
    """
    tracker = getattr(model, _TRACKER_ATTR, None)
    if tracker is None:
        raise RuntimeError(
            'clip_gflops: no FLOPs record; call varedd_mm.track_flops(model) '
            'once before the forward you want to measure')
    return tracker.per_clip_macs() / 1e9
