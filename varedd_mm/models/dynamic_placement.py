# Copyright (c) varedd_mm contributors. All rights reserved.
"""Placement machinery shared by the dynamic backbones and necks: split a
``dynamic_cfg`` into placement and conv keys, and turn the selected convs
of a module into VA-RED² dynamic twins."""
import copy
from typing import Callable, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log

from varedd_mm.ops.config import (DYNAMIC_CFG_DEFAULTS, channels_reducible,
                                  parse_dynamic_cfg)
from varedd_mm.ops.convert import convert_convs, is_conv2plus1d


def split_dynamic_cfg(dynamic_cfg: Optional[dict], owner: str,
                      placement_defaults: dict) -> Tuple[dict, dict]:
    """Split ``dynamic_cfg`` into placement keys (filled from
    ``placement_defaults``) and dynamic-conv keys; unknown keys and
    non-bool values of bool placement keys raise a ``ValueError`` naming
    ``owner`` and the allowed keys."""
    cfg = dict(dynamic_cfg or {})
    unknown = sorted(
        set(cfg) - set(placement_defaults) - set(DYNAMIC_CFG_DEFAULTS))
    if unknown:
        raise ValueError(
            f'{owner}: dynamic_cfg got unknown key(s) {unknown}; allowed '
            f'keys are {sorted(placement_defaults)} (placement) and '
            f'{sorted(DYNAMIC_CFG_DEFAULTS)} (dynamic convs)')
    placement = dict(placement_defaults)
    for key, default in placement_defaults.items():
        if key in cfg:
            placement[key] = cfg.pop(key)
        if isinstance(default, bool) and not isinstance(placement[key], bool):
            raise ValueError(f'{owner}: dynamic_cfg.{key} must be True or '
                             f'False, got {placement[key]!r}')
    return placement, cfg


def make_dynamic(root: nn.Module,
                 owner: str,
                 conv_cfg: dict,
                 selected: Callable[[str, nn.Module], bool],
                 has_time: bool = True) -> None:
    """Turn the convs of ``root`` that ``selected(name, module)`` accepts
    into dynamic twins with ``conv_cfg``; record ``root.dynamic_layer_names``
    and ``root.dynamic_report`` and log them.

    ``conv_cfg`` is validated first (errors name the key, whatever conv it
    would reach). A layer whose output channels (or groups) cannot be halved
    ``search_space - 1`` times keeps only the temporal dimension (or stays
    static when ``dims`` has no temporal).
    """
    spec = parse_dynamic_cfg(conv_cfg, has_time=has_time, layer=owner)
    k, dims = spec.search_space, spec.dims
    temporal_only: List[str] = []

    def choose(name, module) -> Optional[dict]:
        if not selected(name, module):
            return None
        cfg = copy.deepcopy(conv_cfg)
        groups = 1 if is_conv2plus1d(module) else module.groups
        if 'channel' in dims and not channels_reducible(
                module.out_channels, groups, k):
            if 'temporal' not in dims:
                return None
            cfg['dims'] = ('temporal', )
            temporal_only.append(name)
        return cfg

    root.dynamic_layer_names = convert_convs(root, choose)
    root.dynamic_report = dict(
        dynamic=list(root.dynamic_layer_names), temporal_only=temporal_only)
    print_log(
        f'{owner}: {len(root.dynamic_layer_names)} dynamic convs '
        f'(search_space={k}, dims={dims}); temporal only (channels cannot be '
        f'halved): {temporal_only or "none"}',
        logger='current')
