# Copyright (c) varedd_mm contributors. All rights reserved.
"""varedd_mm: VA-RED² (Video Adaptive Redundancy Reduction) for OpenMMLab.

``custom_imports=dict(imports=['varedd_mm'])`` in a config is all a user
adds: importing the package applies the upstream compatibility fixes
(:mod:`varedd_mm.compat`) and registers every component where each
codebase finds it (:mod:`varedd_mm.registry`). No default scope changes.
"""
# first: the upstream fixes must be in place before anything imports the
# codebases' model packages (varedd_mm.compat applies them on import)
from . import compat  # noqa: F401, I001
from .ops import (EfficiencyLoss, VARED2Conv2d, VARED2Conv2plus1d,
                  VARED2Conv3d, clip_gflops, dynamic_layers, fast_inference,
                  fixed_policy, fuse_conv_bn, random_policy, recalibrate_bn,
                  smallest_policy, track_flops, untrack_flops)
from .registry import register_root_components
from .version import __version__

register_root_components()

from . import datasets, engine, evaluation, models  # noqa: E402, F401, I001

__all__ = [
    '__version__', 'EfficiencyLoss', 'VARED2Conv2d', 'VARED2Conv2plus1d',
    'VARED2Conv3d', 'clip_gflops', 'dynamic_layers', 'fast_inference',
    'fixed_policy', 'fuse_conv_bn', 'random_policy', 'recalibrate_bn',
    'smallest_policy', 'track_flops', 'untrack_flops'
]
