# Copyright (c) varedd_mm contributors. All rights reserved.
"""Dynamic backbones: ``dynamic_backbones`` (mmaction) and ``seg_resnet``
(mmseg), each imported when its codebase is installed."""
import importlib.util

__all__ = []

if importlib.util.find_spec('mmaction') is not None:
    from .dynamic_backbones import (VARED2X3D, VARED2ResNet2Plus1d,
                                    VARED2ResNet3d, VARED2ResNet3dSlowOnly,
                                    split_dynamic_cfg)
    __all__ += [
        'VARED2ResNet2Plus1d', 'VARED2ResNet3d', 'VARED2ResNet3dSlowOnly',
        'VARED2X3D', 'split_dynamic_cfg'
    ]

if importlib.util.find_spec('mmseg') is not None:
    from .seg_resnet import VARED2ResNet, VARED2ResNetV1c, VARED2ResNetV1d
    __all__ += ['VARED2ResNet', 'VARED2ResNetV1c', 'VARED2ResNetV1d']
