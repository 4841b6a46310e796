# Copyright (c) varedd_mm contributors. All rights reserved.
"""BatchNorm recalibration under the inference-time (hard) policy."""
from typing import Any, Callable, Iterable, Optional

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from .dynamic_conv import DynamicConvMixin


@torch.no_grad()
def recalibrate_bn(model: nn.Module,
                   batches: Iterable[Any],
                   forward: Optional[Callable[[nn.Module, Any], Any]] = None,
                   max_batches: Optional[int] = None) -> int:
    """Re-estimate every BatchNorm's running statistics with the dynamic
    layers taking their inference-time arg-max choices.

    Why: during training a BN after a dynamic conv sees the soft mixture of
    all choices; at inference each clip takes one hard choice. Running
    statistics measured on the mixture can be off for the hard outputs
    (the slimmable-network pitfall). This pass makes the statistics those of
    the outputs the model will actually produce. Affine parameters and all
    weights are untouched; the statistics are exact cumulative averages
    over the given batches.

    Args:
        model (nn.Module): The model; its train/eval mode is restored.
        batches (Iterable): Inputs to run (for example a few training
            batches).
        forward (callable, optional): ``forward(model, batch)``; defaults to
            ``model(batch)``.
        max_batches (int, optional): Stop after this many batches.

    Returns:
        int: Number of batches used.
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    modes = {m: m.training for m in model.modules()}
    momenta = {bn: bn.momentum for bn in bns}
    used = 0
    try:
        model.train()
        for m in model.modules():
            # hard inference policy in the dynamic layers and their gates,
            # no dropout; only the BNs normalise with batch statistics
            if isinstance(m, DynamicConvMixin):
                m.training = False
                m.gate.eval()
            elif isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative moving average
        for batch in batches:
            if max_batches is not None and used >= max_batches:
                break
            if forward is None:
                model(batch)
            else:
                forward(model, batch)
            used += 1
    finally:
        for m, mode in modes.items():
            m.training = mode
        for bn, mom in momenta.items():
            bn.momentum = mom
    if used == 0:
        raise ValueError('recalibrate_bn: got no batches')
    return used
