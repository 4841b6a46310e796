# Copyright (c) varedd_mm contributors. All rights reserved.
from .vared2_encoder_decoder import VARED2EncoderDecoder

__all__ = ['VARED2EncoderDecoder']
