# Copyright (c) varedd_mm contributors. All rights reserved.
from .model_utils import ClipModel, build_model_from_cfg, load_weights

__all__ = ['ClipModel', 'build_model_from_cfg', 'load_weights']
