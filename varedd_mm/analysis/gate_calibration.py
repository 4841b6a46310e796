# Copyright (c) varedd_mm contributors. All rights reserved.
"""Gates that choose per clip at a chosen realised cost, without training.

Speed measurements of the grouped execution need a batch whose clips take
different choices in every layer, through the gates (which run and are
counted), at a realistic cost. :func:`calibrate_gates` gets that from any
weights (the base's, or random): it shifts each gate's output bias so that
on the given clips a fraction ``p`` of them, those the gate scores highest
for it, take the layer's first reduced option of each dimension (half the
frames, half the channels) and the others the full option, and finds ``p``
by bisection so that the realised cost (the dynamic layers' realised MACs,
gates included, over their full MACs) is the target. Each layer is
calibrated on its own input in that forward, so later layers see the
outputs of the choices made before them.

It is a tool for timing, not a policy: the choices follow whatever the
untrained gates compute, not the clips' redundancy.
"""
from typing import Callable, Dict

import torch
import torch.nn as nn

from ..ops import dynamic_layers


def _shift_bias(layer: nn.Module, x: torch.Tensor, fraction: float,
                dither: float, saved: torch.Tensor) -> None:
    """Set ``layer``'s gate bias from ``saved`` so that ``fraction`` of the
    clips of ``x`` (rounded up or down as ``dither`` in ``[0, 1)`` says)
    take option 1 of each dimension (options above 1 never win)."""
    gate = layer.gate
    bias = gate.fc2.bias
    bias.copy_(saved)
    lt, lc = gate.logits(x)
    n = x.shape[0]
    k = min(n, int(fraction * n + dither))
    for logits, offset in ((lt, 0), (lc, gate.num_temporal)):
        options = logits.shape[1]
        if options < 2:
            continue
        margin = (logits[:, 1] - logits[:, 0]).sort(descending=True).values
        if k == 0:
            shift = -(margin[0] + 1)  # every clip below the full option
        elif k == n:
            shift = -(margin[-1] - 1)
        else:  # midway between the k-th and the (k+1)-th clip
            shift = -(margin[k - 1] + margin[k]) / 2
        bias[offset + 1] += shift
        if options > 2:
            bias[offset + 2:offset + options] = -1e4


def realised_cost(model: nn.Module) -> float:
    """Realised MACs of the dynamic layers in the last forward (gates
    included) over their full MACs, averaged over the clips.

    Raises:
        ValueError: if a dynamic layer did not run in that forward.
    """
    layers = [layer for _, layer in dynamic_layers(model)]
    idle = [
        name for name, layer in dynamic_layers(model)
        if layer.last_macs is None
    ]
    if idle:
        raise ValueError(f'dynamic layers that did not run in the last '
                         f'forward: {idle}')
    realised = sum(layer.last_macs.double() for layer in layers)
    full = sum(layer.full_macs for layer in layers)
    return (realised / full).mean().item()


@torch.no_grad()
def calibrate_gates(model: nn.Module,
                    x: torch.Tensor,
                    cost: float,
                    forward: Callable[[torch.Tensor], object] = None,
                    tolerance: float = 0.01,
                    steps: int = 16) -> Dict[str, float]:
    """Shift every gate bias of ``model`` (in eval mode) so that its gates
    choose per clip of ``x`` at realised cost ``cost`` (see the module
    docstring). In place.

    Args:
        model (nn.Module): A model with VA-RED² layers, in eval mode, no
            forced choice.
        x (Tensor): The clips (a batch of several, to get mixed choices).
        cost (float): Target realised cost ratio, in ``(0, 1]``.
        forward (callable, optional): Runs the model on ``x``; default
            ``model(x)``.
        tolerance (float): Stop when the realised cost is this close (the
            cost moves in steps of about ``1 / (clips * layers)``: a small
            batch of a small model may not get this close; the result says
            what it reached).
        steps (int): At most this many bisection steps.

    Returns:
        dict: ``fraction`` (of clips taking the reduced options per layer
        and dimension) and ``realised_cost`` on ``x``.

    Raises:
        ValueError: for a cost outside ``(0, 1]``, a model in training mode,
            or one without dynamic layers.
    """
    if not 0 < cost <= 1:
        raise ValueError(f'cost must be in (0, 1], got {cost}')
    if model.training:
        raise ValueError('calibrate_gates: call model.eval() first (the '
                         'gates choose by arg-max at inference only)')
    layers = [layer for _, layer in dynamic_layers(model)]
    if not layers:
        raise ValueError('calibrate_gates: the model has no VA-RED2 layers')
    forced = [
        n for n, layer in dynamic_layers(model)
        if layer.forced_choice is not None
    ]
    if forced:
        raise ValueError('calibrate_gates: the gates of forced layers do not '
                         f'run (fixed_policy / clip_policy): {forced}')
    for layer in layers:  # records of an earlier forward must not count
        layer.reset_records()
    forward = forward or model
    saved = [layer.gate.fc2.bias.detach().clone() for layer in layers]

    def run(fraction: float) -> float:
        # the layers round the number of clips differently (dithered), so
        # the cost moves in steps finer than one clip of the batch
        handles = [
            layer.register_forward_pre_hook(lambda m, args, d=(i + 0.5) / len(
                layers), s=s: _shift_bias(m, args[0], fraction, d, s))
            for i, (layer, s) in enumerate(zip(layers, saved))
        ]
        try:
            forward(x)
        finally:
            for h in handles:
                h.remove()
        return realised_cost(model)

    lo, hi = 0.0, 1.0
    fraction = 0.5
    for _ in range(steps):
        fraction = (lo + hi) / 2
        realised = run(fraction)
        if abs(realised - cost) <= tolerance:
            break
        if realised > cost:
            lo = fraction
        else:
            hi = fraction
    # the biases of the last run stay; check what they give without hooks
    forward(x)
    return dict(fraction=fraction, realised_cost=realised_cost(model))
