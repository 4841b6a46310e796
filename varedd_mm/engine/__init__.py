# Copyright (c) varedd_mm contributors. All rights reserved.
from .hooks import VARED2FastInferenceHook, VARED2RecalibrateBNHook

__all__ = ['VARED2FastInferenceHook', 'VARED2RecalibrateBNHook']
