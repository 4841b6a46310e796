# Copyright (c) varedd_mm contributors. All rights reserved.
from .vared2_fast_rcnn import VARED2FastRCNN

__all__ = ['VARED2FastRCNN']
