# Copyright (c) varedd_mm contributors. All rights reserved.
"""The VA-RED² engine: dynamic convs, gate, cheap ops, cost accounting.

Nothing here imports mmaction, mmdet or mmseg; the registered task
components in :mod:`varedd_mm.models` are thin adapters over it.
"""
from .allocator import retain_freed_memory
from .bn import recalibrate_bn
from .cheap_ops import ChannelCheapOp, TemporalCheapOp
from .config import (DYNAMIC_CFG_DEFAULTS, GATE_CFG_DEFAULTS, DynamicSpec,
                     parse_dynamic_cfg)
from .conv2plus1d import VARED2Conv2plus1d
from .convert import convert_convs, to_dynamic
from .dynamic_base import DynamicConvMixin
from .dynamic_conv import VARED2Conv2d, VARED2Conv3d
from .efficiency_loss import EfficiencyLoss
from .flops import clip_gflops, track_flops, untrack_flops
from .fuse import fast_inference, fuse_conv_bn, to_channels_last
from .gate import SoftModulationGate
from .policy import (clip_policy, dynamic_layers, fixed_policy, random_policy,
                     smallest_policy)

__all__ = [
    'ChannelCheapOp', 'clip_policy', 'DYNAMIC_CFG_DEFAULTS',
    'DynamicConvMixin', 'DynamicSpec', 'EfficiencyLoss', 'GATE_CFG_DEFAULTS',
    'SoftModulationGate', 'TemporalCheapOp', 'VARED2Conv2d',
    'VARED2Conv2plus1d', 'VARED2Conv3d', 'clip_gflops', 'dynamic_layers',
    'fast_inference', 'fixed_policy', 'fuse_conv_bn', 'to_channels_last',
    'parse_dynamic_cfg', 'random_policy', 'recalibrate_bn', 'smallest_policy',
    'track_flops', 'untrack_flops', 'convert_convs', 'to_dynamic',
    'retain_freed_memory'
]
