# Copyright (c) varedd_mm contributors. All rights reserved.
"""Inference-time caches of values derived from parameters and buffers.

A fused VA-RED² layer (``fuse.py``) rebuilds with coefficients derived from
its cheap ops' weights and the folded BN (interpolation coefficients, the
BN shift carried through them, ghost filters with the BN folded in).
Deriving them costs a handful of small kernels per layer and forward, which
at batch 1 is a visible share of a forward (docs/engine.md). They are
derived once and kept until a tensor they come from changes.
"""
from typing import Callable, Hashable, Optional, Sequence

import torch


def stamp(*tensors: Optional[torch.Tensor]) -> tuple:
    """Identity, storage, dtype, device and in-place version of each tensor
    (``None`` stays ``None``): it changes when a tensor is replaced
    (assigning a new parameter, a buffer moved by ``Module.to``), when a
    parameter's data is swapped (``Module.to`` / ``.double()`` keep the
    parameter object and give it new data) and when it is modified in
    place (optimizer steps, ``load_state_dict``, which copies into the
    existing tensors)."""
    return tuple(None if t is None else (id(t), t.data_ptr(), t.dtype,
                                         t.device, t._version)
                 for t in tensors)


class InferenceCache:
    """Derived values of a module, one per slot, each rebuilt when the
    tensors it comes from change (see :func:`stamp`).

    An entry keeps the tensors it was derived from, and their storage,
    alive, so neither their ``id`` nor their data pointer can be reused
    while it stands. A deep copy (and a pickle) starts empty: the copy's
    tensors are new objects. Tensors made under ``torch.inference_mode``
    have no version counter: with any of them among the sources nothing is
    cached (the value is built on every call). Values are built without
    autograd: a forward that needs gradients must not read them.
    """

    max_entries = 64

    def __init__(self) -> None:
        self.entries: dict = {}

    def __deepcopy__(self, memo) -> 'InferenceCache':
        return InferenceCache()

    def __getstate__(self) -> dict:
        return {'entries': {}}

    def get(self, slot: Hashable, sources: Sequence[Optional[torch.Tensor]],
            build: Callable[[], object]):
        """The value of ``slot`` derived from ``sources`` by ``build()``,
        built only when ``sources`` changed since the last call."""
        if any(t is not None and t.is_inference() for t in sources):
            with torch.no_grad():
                return build()
        key = stamp(*sources)
        entry = self.entries.get(slot)
        if entry is not None and entry[0] == key:
            return entry[2]
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        with torch.no_grad():
            value = build()
        kept = tuple(None if t is None else (t, t.detach()) for t in sources)
        self.entries[slot] = (key, kept, value)
        return value
