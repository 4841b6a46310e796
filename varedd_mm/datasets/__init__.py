# Copyright (c) varedd_mm contributors. All rights reserved.
from .synthetic_motion import CLASSES, STATIC_CLASSES, generate, render_clip
from .synthetic_segmentation import SEG_CLASSES

__all__ = [
    'CLASSES', 'STATIC_CLASSES', 'SEG_CLASSES', 'generate', 'render_clip'
]
