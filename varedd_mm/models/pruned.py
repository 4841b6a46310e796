# Copyright (c) varedd_mm contributors. All rights reserved.
"""Statically pruned models as ordinary configs (Table 7 of the paper).

Structural pruning (``tools/analysis/prune_static.py``) changes the widths
of convs, norms and linears, which no upstream config can express. The
pruned checkpoint therefore records, next to its ``state_dict``, the shape
of every parameter and buffer and the width attributes of every module the
pruning changed (``meta['pruned_structure']``: plain ints, so the
checkpoint loads with ``torch.load(weights_only=True)``). The model type
``VARED2PrunedModel`` builds the original model from its config, gives
those modules the recorded shapes, and returns it: the runner then loads
the checkpoint through ``load_from`` as for any model, so the standard
``tools/train.py`` / ``tools/test.py`` fine-tune and test it::

    model = dict(type='VARED2PrunedModel', model=<the original model>,
                 structure='work_dirs/prune/pruned.pth')
    load_from = 'work_dirs/prune/pruned.pth'
"""
from typing import Dict

import torch
import torch.nn as nn

# width attributes of the layers structural pruning changes
_WIDTH_ATTRS = ('in_channels', 'out_channels', 'num_features', 'in_features',
                'out_features', 'groups', 'num_channels')


def pruned_structure(model: nn.Module, reference: nn.Module) -> Dict:
    """What differs in shape between ``model`` (pruned) and ``reference``
    (the same architecture unpruned): ``{module name: {'tensors': {name:
    shape}, 'attrs': {name: int}}}``."""
    ref = dict(reference.named_modules())
    out = {}
    for name, module in model.named_modules():
        base = ref.get(name)
        if base is None:
            raise ValueError(f'pruned_structure: module {name!r} is not in '
                             'the reference model')
        tensors = {
            k: list(v.shape)
            for k, v in list(module.named_parameters(recurse=False)) +
            list(module.named_buffers(recurse=False)) if v is not None
        }
        base_tensors = {
            k: list(v.shape)
            for k, v in list(base.named_parameters(recurse=False)) +
            list(base.named_buffers(recurse=False)) if v is not None
        }
        if tensors == base_tensors:
            continue
        attrs = {
            a: int(getattr(module, a))
            for a in _WIDTH_ATTRS if isinstance(getattr(module, a, None), int)
        }
        out[name] = dict(tensors=tensors, attrs=attrs)
    return out


def apply_structure(model: nn.Module, structure: Dict) -> nn.Module:
    """Give the modules of ``model`` the shapes of ``structure`` (values
    uninitialised: load the pruned checkpoint next). In place."""
    for name, record in structure.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f'the pruned structure names module {name!r}, '
                             f'which {type(model).__name__} does not have '
                             '(was it pruned from another config?)') from None
        for key, shape in record['tensors'].items():
            old = getattr(module, key, None)
            if not isinstance(old, torch.Tensor):
                raise ValueError(f'{name}.{key}: no such tensor to reshape')
            new = torch.empty(shape, dtype=old.dtype, device=old.device)
            if isinstance(old, nn.Parameter):
                setattr(module, key,
                        nn.Parameter(new, requires_grad=old.requires_grad))
            else:
                module.register_buffer(key, new)
        for attr, value in record['attrs'].items():
            setattr(module, attr, value)
    return model


def build_pruned_model(model: dict, structure: str) -> nn.Module:
    """``VARED2PrunedModel``: the model of config ``model`` with the widths
    recorded in the checkpoint ``structure`` (see the module docstring)."""
    from mmengine.registry import MODELS
    from mmengine.runner import CheckpointLoader
    built = MODELS.build(model)
    ckpt = CheckpointLoader.load_checkpoint(structure, map_location='cpu')
    record = (ckpt.get('meta') or {}).get('pruned_structure')
    if record is None:
        raise ValueError(f'{structure} has no meta["pruned_structure"]: '
                         'write it with tools/analysis/prune_static.py')
    return apply_structure(built, record)
