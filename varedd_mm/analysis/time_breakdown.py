# Copyright (c) varedd_mm contributors. All rights reserved.
"""Where the time of one forward goes: convolutions, the VA-RED² layers'
own work beyond their convs, and everything else.

``tools/analysis/benchmark.py --profile`` reports it for the base (same
execution) and the VA-RED² model, which is how docs/engine.md explains the
gap between a speed-up and its FLOPs ratio: the ops VA-RED² does not reduce
(residual adds, activations, pools, squeeze-excitation, the static convs)
and what its rebuild costs on top.
"""
from collections import defaultdict
from typing import Callable, Dict, Optional, Sequence

import torch.nn as nn
from torch.profiler import ProfilerActivity, profile, record_function

from varedd_mm.ops import dynamic_layers

#: profiler range around every VA-RED² dynamic layer's forward
DYNAMIC_RANGE = 'varedd_mm::dynamic_layer'
#: prefix of the profiler range around each module timed per layer (named by
#: its index, not its module name: ops are classified by their callers'
#: names, and a module name may contain "conv")
LAYER_RANGE = 'varedd_mm::layer/'


def _is_conv(name: str) -> bool:
    return 'conv' in name.lower()


def _classify(event):
    """``(is_conv, inside_dynamic)``: an op counts as a conv when it or an
    op that called it is one (oneDNN's layout reorders run as ``copy_``
    inside the conv op), and as inside a VA-RED² layer when it ran within
    one's forward."""
    is_conv, inside = _is_conv(event.name), False
    parent = event.cpu_parent
    while parent is not None:
        if parent.name == DYNAMIC_RANGE:
            inside = True
        elif _is_conv(parent.name):
            is_conv = True
        parent = parent.cpu_parent
    return is_conv, inside


def time_breakdown(
        model: nn.Module,
        run: Callable[[], object],
        top: int = 6,
        layers: Optional[Sequence[str]] = None) -> Dict[str, object]:
    """Profile one call of ``run`` (a forward of ``model``) on the CPU side
    and split the ops' self time (ms):

    * ``conv_ms``: convolution ops (every op whose name contains "conv",
      with the ops they call, such as oneDNN's layout reorders), of which
      ``dynamic_conv_ms`` ran inside VA-RED² layers (their reduced convs
      and ghost filters);
    * ``dynamic_other_ms``: the other ops inside VA-RED² layers (placement,
      affine, interpolation, gates, and the inner ReLU of unfused (2+1)D
      convs; in a fused model the one-pass rebuild kernel
      ``varedd_mm::rebuild`` / ``rebuild_into``, which also applies a
      folded ReLU, and at inference the gates' ``varedd_mm::gate_pool``;
      a ReLU folded into a conv as a oneDNN post-op counts as conv time),
      with the ``top`` largest by name in ``dynamic_other_top``;
    * ``other_ms``: every op outside them and not a conv (BN, activations,
      residual adds, pools, heads), with the ``top`` largest by name in
      ``other_top``;
    * ``total_ms``: the sum of the above (host time between ops, which the
      profiler does not attribute to an op, is not in it);
    * with ``layers`` (module names of ``model``), ``layers_ms``: each
      module's whole forward (its ops, and the ops they call), by name; a
      module that ran more than once is summed. A module whose forward
      did not run but whose children did (a fused block can call a conv's
      parts directly, as it does with mmaction's ``Conv2plus1d``) gets
      the sum of its children's forwards; one where neither ran is 0.
      Give the VA-RED² model's dynamic layer names for the VA-RED² model
      and for its base (the same module names there are the plain convs)
      to compare them layer by layer.

    On CUDA the CPU-side times are launch times: use the figure for CPU
    runs.
    """
    stack = []

    def opens(range_name):
        """A pre-hook opening the profiler range ``range_name`` (closed by
        ``leave``; ranges nest, so one stack serves every hook)."""

        def enter(module, args):
            ctx = record_function(range_name)
            ctx.__enter__()
            stack.append(ctx)

        return enter

    def leave(module, args, output):
        stack.pop().__exit__(None, None, None)

    modules = dict(model.named_modules())
    missing = [name for name in layers or () if name not in modules]
    if missing:
        raise ValueError(f'time_breakdown: layers {missing} are not modules '
                         'of the model')
    handles = []
    for _, layer in dynamic_layers(model):
        handles.append(layer.register_forward_pre_hook(opens(DYNAMIC_RANGE)))
        handles.append(layer.register_forward_hook(leave, always_call=True))

    def timed(module, range_name):
        handles.append(module.register_forward_pre_hook(opens(range_name)))
        handles.append(module.register_forward_hook(leave, always_call=True))

    for index, name in enumerate(layers or ()):
        timed(modules[name], f'{LAYER_RANGE}{index}')
        # its children, for when its own forward is bypassed
        for k, child in enumerate(modules[name].children()):
            timed(child, f'{LAYER_RANGE}{index}.{k}')
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run()
    finally:
        for h in handles:
            h.remove()
    parts = defaultdict(float)
    other = defaultdict(float)
    dynamic_other = defaultdict(float)
    per_layer = [0.0] * len(layers or ())
    per_child = [0.0] * len(layers or ())
    for event in prof.events():
        if event.name.startswith(LAYER_RANGE):
            index, _, child = event.name[len(LAYER_RANGE):].partition('.')
            times = per_child if child else per_layer
            times[int(index)] += event.cpu_time_total / 1e3
            continue
        if event.name == DYNAMIC_RANGE:
            continue
        ms = event.self_cpu_time_total / 1e3
        is_conv, inside = _classify(event)
        if is_conv:
            parts['conv_ms'] += ms
            if inside:
                parts['dynamic_conv_ms'] += ms
        elif inside:
            parts['dynamic_other_ms'] += ms
            dynamic_other[event.name] += ms
        else:
            parts['other_ms'] += ms
            other[event.name] += ms
    result = {
        key: round(parts[key], 3)
        for key in ('conv_ms', 'dynamic_conv_ms', 'dynamic_other_ms',
                    'other_ms')
    }
    result['total_ms'] = round(
        parts['conv_ms'] + parts['dynamic_other_ms'] + parts['other_ms'], 3)
    for key, times in (('dynamic_other_top', dynamic_other), ('other_top',
                                                              other)):
        result[key] = {
            name: round(ms, 3)
            for name, ms in sorted(times.items(), key=lambda kv: -kv[1])[:top]
        }
    if layers is not None:
        result['layers_ms'] = {
            name: round(ms if ms > 0 else children, 3)
            for name, ms, children in zip(layers, per_layer, per_child)
        }
    return result
