# Copyright (c) varedd_mm contributors. All rights reserved.
"""varedd_mm: VA-RED² (Video Adaptive Redundancy Reduction) for OpenMMLab.

``custom_imports=dict(imports=['varedd_mm'])`` in a config is all a user
adds: importing the package applies the upstream compatibility fixes
(:mod:`varedd_mm.compat`) and registers every component where each
codebase finds it (:mod:`varedd_mm.registry`). No default scope changes.
"""
from . import compat

compat.apply()

from .ops import (EfficiencyLoss, VARED2Conv2d, VARED2Conv2plus1d,  # noqa
                  VARED2Conv3d, clip_gflops, dynamic_layers, fixed_policy,
                  recalibrate_bn, track_flops, untrack_flops)
from .registry import register_root_components  # noqa: E402
from .version import __version__  # noqa: E402

register_root_components()

__all__ = [
    '__version__', 'EfficiencyLoss', 'VARED2Conv2d', 'VARED2Conv2plus1d',
    'VARED2Conv3d', 'clip_gflops', 'dynamic_layers', 'fixed_policy',
    'recalibrate_bn', 'track_flops', 'untrack_flops'
]
