# Copyright (c) varedd_mm contributors. All rights reserved.
from .mini_kinetics_dataset import MiniKinetics200Dataset
from .synthetic_motion import CLASSES, STATIC_CLASSES, generate, render_clip
from .synthetic_segmentation import SEG_CLASSES

__all__ = [
    'MiniKinetics200Dataset', 'CLASSES', 'STATIC_CLASSES', 'SEG_CLASSES',
    'generate', 'render_clip'
]
