# Copyright (c) varedd_mm contributors. All rights reserved.
"""Registration of the engine's components.

Convs and the efficiency loss go into mmengine's *root* ``MODELS`` under
``VARED2``-prefixed names: ``build_conv_layer`` looks conv types up in the
current default scope's registry, whose parent chain ends at the root, so
they are found from mmaction, mmdet and mmseg scopes alike (and from an
``_scope_='mmdet'`` detector inside an mmaction config). No default scope
is changed and no codebase's ``register_all_modules`` is called.
"""
from mmengine.registry import MODELS

from .ops import EfficiencyLoss, VARED2Conv2d, VARED2Conv2plus1d, VARED2Conv3d

ROOT_COMPONENTS = {
    'VARED2Conv3d': VARED2Conv3d,
    'VARED2Conv2d': VARED2Conv2d,
    'VARED2Conv2plus1d': VARED2Conv2plus1d,
    'VARED2EfficiencyLoss': EfficiencyLoss,
    'EfficiencyLoss': EfficiencyLoss,
}


def register_root_components() -> None:
    """Register the engine in mmengine's root ``MODELS`` (idempotent)."""
    for name, cls in ROOT_COMPONENTS.items():
        if MODELS.get(name) is not cls:
            MODELS.register_module(name=name, module=cls, force=False)
