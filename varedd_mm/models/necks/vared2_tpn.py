# Copyright (c) varedd_mm contributors. All rights reserved.
"""Dynamic Temporal Pyramid Network neck (Table 3 of the paper).

``VARED2TPN`` is mmaction's ``TPN`` built with exactly its own arguments,
whose selected convs then become VA-RED² dynamic twins (same parameter
names: TPN checkpoints load unchanged). ``dynamic_cfg`` holds the conv-level
keys of :mod:`varedd_mm.ops.config` plus these placement keys:

======================  =======  =============================================
key                     default  convs (module names under the neck)
======================  =======  =============================================
``spatial_modulation``  True     ``spatial_modulation.*``: 1x3x3, stride 2,
                                 the heaviest convs of the neck
``temporal_modulation`` False    ``temporal_modulation_ops.*``: 3x1x1 with
                                 32 groups, few MACs for a gate to save
``downsample``          True     ``downsample_ops.*`` (bottom-up flow)
``level_fusion``        True     ``level_fusion_{1,2}.fusion_conv`` (their
                                 grouped 1x1x1 ``downsamples`` stay static)
``pyramid_fusion``      True     ``pyramid_fusion`` (1x1x1 to 2048 channels)
``aux_head``            False    ``aux_head.conv``: training only (the
                                 auxiliary loss), never run at test time
======================  =======  =============================================

After the temporal modulation the pyramid has one frame (TPN-8f pools 8
frames to 1): there a temporal choice computes that frame as the full
choice does, at the same cost, so the efficiency loss never prefers it.
As in the backbones, a layer whose output channels (or groups) cannot be
halved ``search_space - 1`` times keeps only the temporal dimension.
"""
from typing import Optional

from mmaction.models.necks import TPN
from mmaction.registry import MODELS

from varedd_mm.models.dynamic_placement import make_dynamic, split_dynamic_cfg

TPN_PLACEMENT_DEFAULTS = dict(
    spatial_modulation=True,
    temporal_modulation=False,
    downsample=True,
    level_fusion=True,
    pyramid_fusion=True,
    aux_head=False)

# module-name prefix -> placement key
_PARTS = {
    'spatial_modulation.': 'spatial_modulation',
    'temporal_modulation_ops.': 'temporal_modulation',
    'downsample_ops.': 'downsample',
    'level_fusion_1.': 'level_fusion',
    'level_fusion_2.': 'level_fusion',
    'pyramid_fusion.': 'pyramid_fusion',
    'aux_head.': 'aux_head',
}


def _part(name: str) -> Optional[str]:
    for prefix, key in _PARTS.items():
        if name.startswith(prefix):
            return key
    return None


@MODELS.register_module()
class VARED2TPN(TPN):
    """Dynamic ``TPN``: the arguments of mmaction's ``TPN`` plus
    ``dynamic_cfg`` (module docstring).

    Args:
        dynamic_cfg (dict, optional): Placement keys and dynamic-conv keys.
            Defaults to None (every default).
    """

    def __init__(self, *args, dynamic_cfg: Optional[dict] = None, **kwargs):
        super().__init__(*args, **kwargs)
        placement, cfg = split_dynamic_cfg(dynamic_cfg, 'VARED2TPN',
                                           TPN_PLACEMENT_DEFAULTS)
        self.dynamic_placement = placement
        self.dynamic_conv_cfg = cfg

        def selected(name, module) -> bool:
            key = _part(name)
            if key is None or not placement[key]:
                return False
            # the level fusions' grouped 1x1x1 downsamples stay static
            return not (key == 'level_fusion' and '.downsamples.' in name)

        make_dynamic(self, 'VARED2TPN', cfg, selected)
