# Copyright (c) varedd_mm contributors. All rights reserved.
"""Turn static convs of a built model into dynamic twins sharing their
parameter values (``weight``/``bias`` and, for (2+1)D convs, ``conv_s``,
``bn_s``, ``conv_t``), so checkpoints of the base model keep loading."""
from typing import Callable, List, Optional

import torch.nn as nn

from .conv2plus1d import VARED2Conv2plus1d
from .dynamic_base import DYNAMIC_PREFIXES, DynamicConvMixin
from .dynamic_conv import VARED2Conv2d, VARED2Conv3d


def is_conv2plus1d(module: nn.Module) -> bool:
    """mmaction's ``Conv2plus1d`` (duck-typed: the engine does not import
    mmaction)."""
    return (not isinstance(module, DynamicConvMixin)
            and all(hasattr(module, a) for a in ('conv_s', 'bn_s', 'conv_t'))
            and isinstance(module.conv_s, nn.Conv3d))


# plain convs: torch's and mmcv's empty-tensor wrappers (what mmcv's
# registry builds for 'Conv3d'/'Conv2d'); other subclasses (adaptive
# padding, ...) change the computation and are not converted
PLAIN_CONV_MODULES = ('torch.nn.modules.conv', 'mmcv.cnn.bricks.wrappers')


def _plain_conv(module: nn.Module, dims: int) -> bool:
    cls = type(module)
    return (cls.__name__ == f'Conv{dims}d'
            and cls.__module__ in PLAIN_CONV_MODULES)


def convertible(module: nn.Module) -> bool:
    """Whether :func:`to_dynamic` accepts ``module``."""
    if isinstance(module, DynamicConvMixin):
        return False
    return (_plain_conv(module, 3) or _plain_conv(module, 2)
            or is_conv2plus1d(module))


def to_dynamic(module: nn.Module,
               dynamic_cfg: Optional[dict] = None) -> DynamicConvMixin:
    """The dynamic twin of a static conv, with the same hyper-parameters and
    parameter values; gate and cheap ops are freshly initialised.

    Args:
        module (nn.Module): ``nn.Conv3d``, ``nn.Conv2d`` or a
            ``Conv2plus1d``.
        dynamic_cfg (dict, optional): See :mod:`varedd_mm.ops.config`.

    Returns:
        DynamicConvMixin: The new module (same device, dtype and mode).
    """
    plain = {3: VARED2Conv3d, 2: VARED2Conv2d}
    dims = next((d for d in plain if _plain_conv(module, d)), None)
    if dims is not None:
        dyn = plain[dims](
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            module.dilation,
            module.groups,
            bias=module.bias is not None,
            padding_mode=module.padding_mode,
            dynamic_cfg=dynamic_cfg)
    elif is_conv2plus1d(module):
        dyn = VARED2Conv2plus1d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            bias=module.conv_s.bias is not None,
            norm_cfg=module.norm_cfg,
            dynamic_cfg=dynamic_cfg)
    else:
        raise TypeError(f'to_dynamic: cannot convert {type(module).__name__}; '
                        'supported: nn.Conv3d, nn.Conv2d, Conv2plus1d')
    missing, unexpected = dyn.load_state_dict(
        module.state_dict(), strict=False)
    bad = [k for k in missing if not k.startswith(DYNAMIC_PREFIXES)]
    if bad or unexpected:
        raise RuntimeError(f'to_dynamic: state of {type(module).__name__} '
                           f'does not map onto {type(dyn).__name__}: missing '
                           f'{bad}, unexpected {unexpected}')
    param = next(module.parameters())
    dyn.to(device=param.device, dtype=param.dtype)
    dyn.train(module.training)
    return dyn


def convert_convs(
        root: nn.Module, dynamic_cfg: Callable[[str, nn.Module],
                                               Optional[dict]]) -> List[str]:
    """Replace, in place, every convertible conv of ``root`` for which
    ``dynamic_cfg(name, module)`` returns a config (``None`` keeps it
    static). A ``Conv2plus1d`` is converted as a whole; its inner convs are
    not visited.

    Returns:
        list[str]: Names of the converted modules, in module order.
    """
    converted = []
    skip_prefixes = []
    for name, module in list(root.named_modules()):
        if not name or any(name.startswith(p) for p in skip_prefixes):
            continue
        if not convertible(module):
            continue
        if is_conv2plus1d(module):
            skip_prefixes.append(name + '.')
        cfg = dynamic_cfg(name, module)
        if cfg is None:
            continue
        parent_name, _, attr = name.rpartition('.')
        parent = root.get_submodule(parent_name) if parent_name else root
        setattr(parent, attr, to_dynamic(module, cfg))
        converted.append(name)
    return converted
