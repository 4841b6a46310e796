# Copyright (c) varedd_mm contributors. All rights reserved.
from .synthetic_motion import CLASSES, STATIC_CLASSES, generate, render_clip

__all__ = ['CLASSES', 'STATIC_CLASSES', 'generate', 'render_clip']
