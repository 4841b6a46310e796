# Copyright (c) varedd_mm contributors. All rights reserved.
from .vared2_tpn import TPN_PLACEMENT_DEFAULTS, VARED2TPN

__all__ = ['VARED2TPN', 'TPN_PLACEMENT_DEFAULTS']
