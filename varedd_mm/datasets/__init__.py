# Copyright (c) varedd_mm contributors. All rights reserved.
import importlib.util

from .synthetic_motion import CLASSES, STATIC_CLASSES, generate, render_clip
from .synthetic_motion_hard import (HARD_CLASSES, HARD_STATIC_CLASSES,
                                    render_hard_clip)
from .synthetic_segmentation import SEG_CLASSES

__all__ = [
    'CLASSES', 'STATIC_CLASSES', 'SEG_CLASSES', 'generate', 'render_clip',
    'HARD_CLASSES', 'HARD_STATIC_CLASSES', 'render_hard_clip'
]

# registered in mmaction's DATASETS, like the models: only with mmaction
if importlib.util.find_spec('mmaction') is not None:
    from .mini_kinetics_dataset import MiniKinetics200Dataset  # noqa: F401
    __all__ += ['MiniKinetics200Dataset']
