# Copyright (c) varedd_mm contributors. All rights reserved.
from .hooks import VARED2RecalibrateBNHook

__all__ = ['VARED2RecalibrateBNHook']
