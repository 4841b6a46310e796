# Copyright (c) varedd_mm contributors. All rights reserved.
"""Dynamic mmseg ResNets (the dilated ResNet-18 of Table 11 of the paper):
mmseg's ``ResNet`` / ``ResNetV1c`` / ``ResNetV1d``, built with exactly their
own arguments, whose selected ``nn.Conv2d`` then become ``VARED2Conv2d``
twins (same parameter names: mmseg checkpoints load unchanged).

Images have no time axis, so only the channel policy applies: ``dims``
defaults to ``('channel', )`` and ``'temporal'`` is refused (the error names
``dynamic_cfg.dims``). Dilated 3x3 convs (d8 backbones: dilation 2 and 4,
padding = dilation) and the deep stem (three 3x3 convs) run their reduced
choices like any other conv. Placement keys of ``dynamic_cfg`` (next to
the conv-level keys of :mod:`varedd_mm.ops.config`):

==============  =======  =====================================================
key             default  convs (module names under the backbone)
==============  =======  =====================================================
``stem``        True     ``stem.0/3/6`` (deep stem of V1c/V1d) or ``conv1``
``stages``      None     1-based residual stages whose block convs
                         (``layer<s>.<b>.conv1/2/3``) are dynamic; None = all
``downsample``  False    the 1x1 shortcut convs (``layer<s>.0.downsample``)
                         of the selected stages
==============  =======  =====================================================
"""
from typing import Optional

from mmseg.models.backbones import ResNet, ResNetV1c, ResNetV1d
from mmseg.registry import MODELS

from varedd_mm.models.dynamic_placement import DynamicBackboneMixin

SEG_PLACEMENT_DEFAULTS = dict(stem=True, stages=None, downsample=False)


class _ImageBackboneMixin(DynamicBackboneMixin):
    _placement_defaults = SEG_PLACEMENT_DEFAULTS
    _stem_pattern = r'(stem\.\d+|conv1)$'
    _has_time = False


@MODELS.register_module()
class VARED2ResNet(_ImageBackboneMixin, ResNet):
    """Dynamic mmseg ``ResNet``: its arguments plus ``dynamic_cfg`` (module
    docstring)."""

    def __init__(self, *args, dynamic_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._make_dynamic(dynamic_cfg)


@MODELS.register_module()
class VARED2ResNetV1c(_ImageBackboneMixin, ResNetV1c):
    """Dynamic mmseg ``ResNetV1c`` (deep stem; the backbone of mmseg's
    ``*_r18-d8`` configs): its arguments plus ``dynamic_cfg`` (module
    docstring)."""

    def __init__(self, *args, dynamic_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._make_dynamic(dynamic_cfg)


@MODELS.register_module()
class VARED2ResNetV1d(_ImageBackboneMixin, ResNetV1d):
    """Dynamic mmseg ``ResNetV1d`` (deep stem, average-pool shortcuts): its
    arguments plus ``dynamic_cfg`` (module docstring)."""

    def __init__(self, *args, dynamic_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._make_dynamic(dynamic_cfg)
