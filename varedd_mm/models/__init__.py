# Copyright (c) varedd_mm contributors. All rights reserved.
"""Task adapters, registered in each codebase's registries.

Each codebase is optional: its adapters are imported only when the codebase
is installed (guarded as mmaction's ``roi_heads`` does for mmdet), so
``import varedd_mm`` works with any subset of mmaction2 / mmdet / mmseg.
"""
import importlib.util

__all__ = []

if importlib.util.find_spec('mmaction') is not None:
    from .backbones import VARED2ResNet2Plus1d  # noqa
    from .backbones import VARED2X3D, VARED2ResNet3d, VARED2ResNet3dSlowOnly
    from .necks import VARED2TPN
    from .recognizers import VARED2Recognizer3D  # noqa
    __all__ += [
        'VARED2ResNet2Plus1d', 'VARED2ResNet3d', 'VARED2ResNet3dSlowOnly',
        'VARED2X3D', 'VARED2TPN', 'VARED2Recognizer3D'
    ]

if importlib.util.find_spec('mmseg') is not None:
    from .backbones import VARED2ResNet, VARED2ResNetV1c, VARED2ResNetV1d
    from .segmentors import VARED2EncoderDecoder
    __all__ += [
        'VARED2ResNet', 'VARED2ResNetV1c', 'VARED2ResNetV1d',
        'VARED2EncoderDecoder'
    ]

if importlib.util.find_spec('mmdet') is not None:
    from .detectors import VARED2FastRCNN
    __all__ += ['VARED2FastRCNN']

if importlib.util.find_spec('mmaction') is not None:
    from mmaction.registry import MODELS as _ACTION_MODELS

    from .pruned import build_pruned_model
    if _ACTION_MODELS.get('VARED2PrunedModel') is None:
        _ACTION_MODELS.register_module(
            name='VARED2PrunedModel', module=build_pruned_model)
