# Copyright (c) varedd_mm contributors. All rights reserved.
"""Dynamic mmaction backbones: the upstream backbone, built with exactly its
own arguments, whose selected convs are then turned into VA-RED² dynamic
twins (shared parameter names, so base checkpoints load unchanged).

``dynamic_cfg`` holds the conv-level keys of :mod:`varedd_mm.ops.config`
plus placement keys that choose which convs become dynamic:

==============  =======  =====================================================
key             default  meaning
==============  =======  =====================================================
``stem``        True     the stem conv(s) (12 % of R(2+1)D-18's FLOPs: leaving
                         it static caps the saving)
``stages``      None     1-based residual stages whose block convs are
                         dynamic; None = all
``downsample``  False    the 1x1x1 shortcut convs of the selected stages
                         (little FLOPs; a gate there costs more than it can
                         save)
``depthwise``   False    grouped/depthwise convs (X3D's 3x3x3 channel-wise
                         convs: 27 MACs per element, so a gate is not
                         negligible there and their FLOPs are small)
``conv5``       True     X3D only: the final 1x1x1 conv
==============  =======  =====================================================

Squeeze-excitation convs (X3D) always stay static. A layer whose output
channels cannot be halved ``search_space - 1`` times (X3D-M's 54-wide
bottleneck at search space 3) keeps only the temporal dimension; such
layers are listed in the log and in ``backbone.dynamic_report``.
"""
from typing import Optional

from mmaction.models.backbones import (X3D, ResNet2Plus1d, ResNet3d,
                                       ResNet3dSlowOnly)
from mmaction.registry import MODELS

from varedd_mm.models.dynamic_placement import (  # noqa: F401
    DynamicBackboneMixin, split_dynamic_cfg)

#: placement keys of the video backbones and their defaults
PLACEMENT_DEFAULTS = DynamicBackboneMixin._placement_defaults


@MODELS.register_module()
class VARED2ResNet3d(DynamicBackboneMixin, ResNet3d):
    """Dynamic ``ResNet3d`` (I3D, SlowOnly, C3D-style): the arguments of
    mmaction's ``ResNet3d`` plus ``dynamic_cfg`` (module docstring)."""

    def __init__(self, *args, dynamic_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._make_dynamic(dynamic_cfg)


@MODELS.register_module()
class VARED2ResNet3dSlowOnly(DynamicBackboneMixin, ResNet3dSlowOnly):
    """Dynamic ``ResNet3dSlowOnly`` (SlowOnly R50, the TPN backbone): the
    arguments of mmaction's ``ResNet3dSlowOnly`` plus ``dynamic_cfg``."""

    def __init__(self, *args, dynamic_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._make_dynamic(dynamic_cfg)


@MODELS.register_module()
class VARED2ResNet2Plus1d(DynamicBackboneMixin, ResNet2Plus1d):
    """Dynamic R(2+1)D: the arguments of mmaction's ``ResNet2Plus1d`` plus
    ``dynamic_cfg``; its ``Conv2plus1d`` convs become
    ``VARED2Conv2plus1d``."""

    def __init__(self, *args, dynamic_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._make_dynamic(dynamic_cfg)


@MODELS.register_module()
class VARED2X3D(DynamicBackboneMixin, X3D):
    """Dynamic X3D: the arguments of mmaction's ``X3D`` plus
    ``dynamic_cfg``. By default the stem's spatial conv, every block's two
    1x1x1 convs and ``conv5`` are dynamic; the depthwise convs and SE stay
    static (module docstring)."""

    def __init__(self, *args, dynamic_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._make_dynamic(dynamic_cfg)
