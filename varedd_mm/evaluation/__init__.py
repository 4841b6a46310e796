# Copyright (c) varedd_mm contributors. All rights reserved.
import importlib.util

__all__ = []

if importlib.util.find_spec('mmaction') is not None:
    from .efficiency_metric import VARED2EfficiencyMetric  # noqa
    __all__ += ['VARED2EfficiencyMetric']
