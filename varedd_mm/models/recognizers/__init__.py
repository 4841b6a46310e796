# Copyright (c) varedd_mm contributors. All rights reserved.
from .vared2_recognizer3d import VARED2Recognizer3D

__all__ = ['VARED2Recognizer3D']
