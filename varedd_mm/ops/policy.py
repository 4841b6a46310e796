# Copyright (c) varedd_mm contributors. All rights reserved.
"""Model-level policy helpers: find dynamic layers, force choices."""
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

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
    layers = _layers_of(model, 'fixed_policy')
    for value, name in ((temporal, 'temporal'), (channel, 'channel')):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f'fixed_policy: {name} must be an int choice, '
                             f'got {value!r}')
    with _forced(layers, 'fixed_policy',
                 lambda m: _own_choice(m, temporal, channel)):
        yield model


@contextmanager
def smallest_policy(model: nn.Module) -> Iterator[nn.Module]:
    """Force every dynamic layer of ``model`` to its smallest choice: the
    last option of each dimension it reduces (``search_space - 1``), 0 in
    the others; the learned gates are used again on exit (the choices
    forced before, if any, are restored). The sandwich rule's smallest
    network; the largest is ``fixed_policy(model, 0, 0)``.

    Example:
        >>> with varedd_mm.smallest_policy(model):
        ...     out = model(x)  # e.g. every layer at (1, 1), search space 2
    """
    layers = _layers_of(model, 'smallest_policy')

    def choice_of(m):
        spec = m.dynamic_spec
        return spec.num_temporal - 1, spec.num_channel - 1

    with _forced(layers, 'smallest_policy', choice_of):
        yield model


@contextmanager
def random_policy(
        model: nn.Module,
        generator: Optional[torch.Generator] = None) -> Iterator[nn.Module]:
    """Force every dynamic layer of ``model`` to a choice drawn at random,
    independently per layer and per dimension it reduces, uniformly over
    that dimension's options (0 in the others); the learned gates are used
    again on exit (the choices forced before, if any, are restored). One
    draw per call: every clip of a batch takes the same choices. The
    sandwich rule's random middle networks: what a learned policy mixes
    (some layers full, others reduced) without the gates deciding.

    Args:
        model (nn.Module): Any module containing dynamic layers.
        generator (torch.Generator, optional): A CPU generator to draw
            from (the global one if None); a model's own generator leaves
            the global random state, and so the training forward's draws,
            alone.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> with varedd_mm.random_policy(model, g):
        ...     out = model(x)
    """
    layers = _layers_of(model, 'random_policy')

    def choice_of(m):
        spec = m.dynamic_spec
        return tuple(
            int(torch.randint(n, (), generator=generator))
            for n in (spec.num_temporal, spec.num_channel))

    with _forced(layers, 'random_policy', choice_of):
        yield model


def _layers_of(model: nn.Module, owner: str) -> List[Tuple[str, nn.Module]]:
    """``dynamic_layers(model)``; a ``ValueError`` naming ``owner`` if it
    has none."""
    layers = dynamic_layers(model)
    if not layers:
        raise ValueError(f'{owner}: the model has no VA-RED2 dynamic layers')
    return layers


def _own_choice(m: DynamicConvMixin, temporal: int,
                channel: int) -> Tuple[int, int]:
    """``(temporal, channel)`` for layer ``m``: 0 in a dimension it does
    not reduce."""
    return (temporal if 'temporal' in m.dims else 0,
            channel if 'channel' in m.dims else 0)


def _check(m: DynamicConvMixin, choice: Tuple[int, int], owner: str,
           name: str) -> None:
    """A ``ValueError`` naming ``owner`` and the layer unless ``choice`` is
    in layer ``m``'s search space."""
    try:
        m._validate_choice(choice)
    except ValueError as e:
        raise ValueError(f'{owner}: layer {name}: {e}') from None


@contextmanager
def _forced(layers: List[Tuple[str, nn.Module]], owner: str,
            choice_of) -> Iterator[None]:
    """Set every layer's ``forced_choice`` to ``choice_of(layer)``
    (validated) and restore the old ones on exit."""
    saved = [m.forced_choice for _, m in layers]
    try:
        for name, m in layers:
            choice = choice_of(m)
            _check(m, choice, owner, name)
            m.forced_choice = choice
        yield
    finally:
        for (_, m), old in zip(layers, saved):
            m.forced_choice = old


@contextmanager
def clip_policy(model: nn.Module,
                choices: Sequence[Tuple[int, int]]) -> Iterator[nn.Module]:
    """Give clip ``i`` of every batch the choice ``choices[i % len]`` in
    every dynamic layer, through the layers' inference path: the gates run
    (their cost is real) and their logits are replaced by ones whose
    arg-max is the clip's choice, so clips are grouped by choice as with
    learned gates. For benchmarks of mixed batches and tests; eval mode
    only (training mixes every choice anyway).

    A dimension a layer does not reduce is 0 for that layer; a choice
    outside a layer's search space raises a ``ValueError``.
    """
    layers = _layers_of(model, 'clip_policy')
    if not choices:
        raise ValueError('clip_policy: choices must not be empty')
    patched = []
    try:
        for name, m in layers:
            own = [_own_choice(m, i, j) for i, j in choices]
            for c in own:
                _check(m, c, 'clip_policy', name)
            gate = m.gate
            original = gate.logits

            def logits(x, _original=original, _own=own, _gate=gate):
                lt, lc = _original(x)
                idx = torch.arange(x.shape[0], device=x.device) % len(_own)
                table = torch.tensor(_own, device=x.device)[idx]
                lt = 10.0 * F.one_hot(table[:, 0], _gate.num_temporal).to(lt)
                lc = 10.0 * F.one_hot(table[:, 1], _gate.num_channel).to(lc)
                return lt, lc

            gate.logits = logits
            patched.append(gate)
        yield model
    finally:
        for gate in patched:
            del gate.logits
