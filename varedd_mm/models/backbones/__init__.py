# Copyright (c) varedd_mm contributors. All rights reserved.
from .dynamic_backbones import (VARED2X3D, VARED2ResNet2Plus1d, VARED2ResNet3d,
                                VARED2ResNet3dSlowOnly, split_dynamic_cfg)

__all__ = [
    'VARED2ResNet2Plus1d', 'VARED2ResNet3d', 'VARED2ResNet3dSlowOnly',
    'VARED2X3D', 'split_dynamic_cfg'
]
