# Copyright (c) varedd_mm contributors. All rights reserved.
"""Helpers shared by the fused-inference tests (not a test module)."""
import torch
from torch.nn.modules.batchnorm import _BatchNorm

import varedd_mm.ops.dynamic_base as dynamic_base
from varedd_mm.ops import clip_policy


def randomise(model):
    """BN statistics and cheap ops away from their identity init, so that
    folding and the rebuild's shift terms matter."""
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
        if hasattr(m, 'temporal_ops'):
            for op in list(m.temporal_ops) + list(m.channel_ops):
                op.weight.data.add_(0.2 * torch.randn_like(op.weight))
    return model


def grouped_outputs(monkeypatch, block, fused, x, choices):
    """``block`` and its fused copy on ``x`` with per-clip ``choices``:
    ``(expected, fused output, fused output on the torch-op path,
    native_rebuild calls)``; each call is ``(into, residual, returned)``
    (``into`` as passed, None when none was)."""
    calls = []
    original = dynamic_base.native_rebuild

    def counted(*args):
        out = original(*args)
        into = args[5] if len(args) > 5 else None
        residual = args[6] if len(args) > 6 else None
        calls.append((into, residual, out))
        return out

    monkeypatch.setattr(dynamic_base, 'native_rebuild', counted)
    with clip_policy(block, choices):
        expected = block(x)
    with clip_policy(fused, choices):
        out = fused(x)
        monkeypatch.setenv('VARED2_NATIVE', '0')
        fallback = fused(x)
        monkeypatch.delenv('VARED2_NATIVE')
    return expected, out, fallback, calls
