# Copyright (c) varedd_mm contributors. All rights reserved.
"""Placement machinery shared by the dynamic backbones and necks of every
codebase: split a ``dynamic_cfg`` into placement and conv keys, turn the
selected convs of a module into VA-RED² dynamic twins, and the backbone
mixin that selects them by stem / stage / shortcut."""
import copy
import re
from typing import Callable, Dict, List, Optional, Tuple

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
    unreducible: List[str] = []

    def choose(name, module) -> Optional[dict]:
        if not selected(name, module):
            return None
        cfg = copy.deepcopy(conv_cfg)
        groups = 1 if is_conv2plus1d(module) else module.groups
        if 'channel' in dims and not channels_reducible(
                module.out_channels, groups, k):
            if 'temporal' not in dims:
                unreducible.append(name)
                return None
            cfg['dims'] = ('temporal', )
            temporal_only.append(name)
        return cfg

    root.dynamic_layer_names = convert_convs(root, choose)
    root.dynamic_report = dict(
        dynamic=list(root.dynamic_layer_names),
        temporal_only=temporal_only,
        static_unreducible=unreducible)
    print_log(
        f'{owner}: {len(root.dynamic_layer_names)} dynamic convs '
        f'(search_space={k}, dims={dims}); temporal only (channels cannot be '
        f'halved): {temporal_only or "none"}; left static (channels cannot '
        f'be halved, no time axis to reduce): {unreducible or "none"}',
        logger='current')


class DynamicBackboneMixin:
    """Turn the convs chosen by the placement keys of ``dynamic_cfg`` into
    dynamic twins, after the upstream backbone's ``__init__``.

    A subclass (``VARED2X(DynamicBackboneMixin, X)``) calls
    :meth:`_make_dynamic` at the end of ``__init__`` and may set:

    * ``_placement_defaults``: its placement keys and defaults;
    * ``_stem_pattern``: regex of its stem conv names;
    * ``_has_time``: False for image backbones, whose convs only take
      channel choices (``dims`` defaults to ``('channel', )``; asking for
      ``'temporal'`` is an error naming the key).

    Residual block convs are found as ``layer<stage>.<block>.<name>``
    (mmaction's and mmseg's ResNets); ``downsample*`` there are the shortcut
    convs (dynamic with ``downsample=True``, in the ``stages`` selected);
    squeeze-excitation convs always stay static.
    """

    _placement_defaults = dict(
        stem=True, stages=None, downsample=False, depthwise=False, conv5=True)
    _stem_pattern = r'conv1(_s|_t)?\.conv$'
    _has_time = True

    def _make_dynamic(self, dynamic_cfg: Optional[dict]) -> None:
        name = type(self).__name__
        placement, conv_cfg = split_dynamic_cfg(dynamic_cfg, name,
                                                self._placement_defaults)
        if not self._has_time:
            conv_cfg.setdefault('dims', ('channel', ))
        stages = placement['stages']
        num_stages = len(self.res_layers)
        if stages is not None:
            stages = tuple(stages)
            bad = [s for s in stages if s not in range(1, num_stages + 1)]
            if bad or not stages:
                raise ValueError(
                    f'{name}: dynamic_cfg.stages must be a non-empty subset '
                    f'of {tuple(range(1, num_stages + 1))}, got {stages!r}')
        self.dynamic_placement = placement
        self.dynamic_conv_cfg = conv_cfg
        make_dynamic(
            self,
            name,
            conv_cfg,
            lambda mod_name, module: self._selected(mod_name, module,
                                                    placement, stages),
            has_time=self._has_time)

    def _selected(self, mod_name: str, module: nn.Module, placement: Dict,
                  stages: Optional[Tuple[int, ...]]) -> bool:
        if '.se_module.' in mod_name or mod_name.startswith('se_module'):
            return False
        groups = 1 if is_conv2plus1d(module) else module.groups
        if groups > 1 and not placement.get('depthwise', False):
            return False
        if re.match(self._stem_pattern, mod_name):
            return placement['stem']
        if mod_name.startswith('conv5.') and 'conv5' in placement:
            return placement['conv5']
        m = re.match(r'layer(\d+)\.\d+\.(.*)$', mod_name)
        if m is None:
            return False
        in_stages = stages is None or int(m.group(1)) in stages
        if m.group(2).startswith('downsample'):
            return placement['downsample'] and in_stages
        return in_stages
