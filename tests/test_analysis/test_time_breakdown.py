# Copyright (c) varedd_mm contributors. All rights reserved.
"""``time_breakdown``'s per-module times (``benchmark.py --profile``'s
``layers``): a module whose forward is bypassed, as a fused block bypasses
mmaction's ``Conv2plus1d`` and calls its convs, is timed by its children."""
import torch
import torch.nn as nn

from varedd_mm.analysis import time_breakdown


class _Parts(nn.Module):
    """A module whose own forward the model never calls."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 1)


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.parts = _Parts()
        self.plain = nn.Conv2d(8, 8, 1)
        self.unused = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        return self.plain(self.parts.b(self.parts.a(x)))


@torch.no_grad()
def test_a_bypassed_module_is_timed_by_its_children():
    net = _Net().eval()
    x = torch.randn(2, 3, 32, 32)
    names = ['parts', 'plain', 'unused']
    result = time_breakdown(net, lambda: net(x), layers=names)
    ms = result['layers_ms']
    assert list(ms) == names
    assert ms['parts'] > 0 and ms['plain'] > 0
    assert ms['unused'] == 0  # neither it nor a child ran
    # the three convs' ops all ran inside the two timed modules: the
    # bypassed one is timed through its children
    assert ms['parts'] + ms['plain'] >= result['conv_ms'] - 2e-3
    assert result['conv_ms'] > 0 and result['dynamic_conv_ms'] == 0
