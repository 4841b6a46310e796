# Copyright (c) varedd_mm contributors. All rights reserved.
"""Model-level policy helpers: find dynamic layers, force choices."""
from contextlib import contextmanager
from typing import Iterator, List, Tuple

import torch.nn as nn

from .dynamic_base import DynamicConvMixin


def dynamic_layers(model: nn.Module) -> List[Tuple[str, DynamicConvMixin]]:
    """All VA-RED² dynamic layers of ``model`` as ``(name, module)``."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, DynamicConvMixin)]


@contextmanager
def fixed_policy(model: nn.Module,
                 temporal: int = 0,
                 channel: int = 0) -> Iterator[nn.Module]:
    """Force every dynamic layer of ``model`` to choice ``(temporal,
    channel)``; the learned gates are used again on exit.

    A dimension a layer does not reduce (not in its ``dims``) is ignored for
    that layer. A choice outside a reducing layer's search space raises a
    ``ValueError``. While forced, the gates are not run (and not counted).

    Args:
        model (nn.Module): Any module containing dynamic layers.
        temporal (int): Temporal choice ``p_t`` (stride x ``2**p_t``).
        channel (int): Channel choice ``p_c`` (``C_out / 2**p_c`` filters).

    Example:
        >>> with varedd_mm.fixed_policy(model, temporal=1, channel=1):
        ...     out = model(x)
    """
    layers = dynamic_layers(model)
    if not layers:
        raise ValueError('fixed_policy: the model has no VA-RED2 dynamic '
                         'layers')
    for value, name in ((temporal, 'temporal'), (channel, 'channel')):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'fixed_policy: {name} must be an int choice, '
                             f'got {value!r}')
    saved = [m.forced_choice for _, m in layers]
    try:
        for name, m in layers:
            choice = (temporal if 'temporal' in m.dims else 0,
                      channel if 'channel' in m.dims else 0)
            try:
                m._validate_choice(choice)
            except ValueError as e:
                raise ValueError(f'fixed_policy: layer {name}: {e}') from None
            m.forced_choice = choice
        yield model
    finally:
        for (_, m), old in zip(layers, saved):
            m.forced_choice = old
