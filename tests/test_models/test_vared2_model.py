# Copyright (c) varedd_mm contributors. All rights reserved.
"""``VARED2ModelMixin`` on a model of no codebase: the glue asks nothing of
the task model but a loss dict (mmdet-style list-valued terms included)."""
import copy

import pytest
import torch
from torch import nn

from varedd_mm import (VARED2Conv3d, fixed_policy, random_policy,
                       smallest_policy)
from varedd_mm.models.vared2_model import VARED2ModelMixin


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.conv = VARED2Conv3d(4, 8, 1)

    def loss(self, x):
        y = self.conv(x)
        return dict(
            loss_parts=[y.mean(), y.abs().mean()], acc=y.new_tensor(0.5))


class _Model(VARED2ModelMixin, _Net):
    pass


def _assert_terms(out, prefix, ref, weight):
    """``out`` has ``ref``'s keys prefixed ``<prefix>_``, its loss terms
    exactly ``weight`` times ``ref``'s."""
    assert sorted(k for k in out if k.startswith(f'{prefix}_')) == [
        f'{prefix}_acc', f'{prefix}_loss_parts'
    ]
    for got, want in zip(out[f'{prefix}_loss_parts'], ref['loss_parts']):
        torch.testing.assert_close(got, weight * want, rtol=0, atol=0)


def test_full_choice_loss_scales_list_terms_and_leaves_the_others():
    model = _Model(full_choice_loss=dict(loss_weight=3.0)).train()
    x = torch.randn(2, 4, 4, 6, 6)
    with fixed_policy(model, 0, 0):
        ref = _Net.loss(model, x)
    out = model.loss(x)
    assert sorted(out) == [
        'acc', 'eff_ratio_expected', 'eff_ratio_realised', 'full_acc',
        'full_loss_parts', 'loss_parts'
    ]
    assert isinstance(out['full_loss_parts'], list)
    _assert_terms(out, 'full', ref, 3.0)
    assert float(out['full_acc']) == 0.5  # not a loss: not weighted
    # the efficiency records are the training forward's, not (0, 0)'s
    assert float(out['eff_ratio_realised']) < 1.0


def test_smallest_weight_adds_the_smallest_networks_terms():
    model = _Model(
        full_choice_loss=dict(loss_weight=3.0, smallest_weight=0.5)).train()
    x = torch.randn(2, 4, 4, 6, 6)
    with fixed_policy(model, 0, 0):
        full = _Net.loss(model, x)
    with smallest_policy(model):
        small = _Net.loss(model, x)
    out = model.loss(x)
    _assert_terms(out, 'smallest', small, 0.5)
    _assert_terms(out, 'full', full, 3.0)
    # (1, 1) is not (0, 0): the two ends are different forwards
    assert not torch.equal(small['loss_parts'][0], full['loss_parts'][0])
    assert model.conv.forced_choice is None
    # smallest_weight 0 (off, as by default): no smallest forward
    model = _Model(full_choice_loss=dict(smallest_weight=0)).train()
    assert not any(k.startswith('smallest_') for k in model.loss(x))


def test_random_weight_adds_a_network_drawn_anew_each_step():
    torch.manual_seed(0)  # the model's draws are seeded from it
    model = _Model(full_choice_loss=dict(random_weight=0.5)).train()
    # a deep copy (EMA, a distillation teacher) has the same draws ahead
    twin = copy.deepcopy(model)
    x = torch.randn(2, 4, 4, 6, 6)
    draws = torch.Generator()
    draws.set_state(model._vared2_draws)
    with random_policy(model, draws):
        first = model.conv.forced_choice
        ref = _Net.loss(model, x)
    out = model.loss(x)
    _assert_terms(out, 'random', ref, 0.5)
    assert model.conv.forced_choice is None
    # each step draws anew from the model's own generator state (the
    # extra forwards restore the global random state: drawing from it,
    # every step would take the same network here)
    seen = []
    model.conv.register_forward_pre_hook(
        lambda m, args: seen.append(m.forced_choice))
    for _ in range(20):
        model.loss(x)
    # per step: the full choice, the random network, the training forward
    assert seen[0::3] == [(0, 0)] * 20 and seen[2::3] == [None] * 20
    assert set(seen[1::3]) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    twin_seen = []
    twin.conv.register_forward_pre_hook(
        lambda m, args: twin_seen.append(m.forced_choice))
    twin.loss(x)
    assert twin_seen == [(0, 0), first, None]
    # the draws depend on the seed of the process when the model is built
    states = []
    for seed in (123, 123, 124):
        torch.manual_seed(seed)
        states.append(
            _Model(full_choice_loss=dict(random_weight=1.0))._vared2_draws)
    assert torch.equal(states[0], states[1])
    assert not torch.equal(states[0], states[2])


@pytest.mark.parametrize('bad,match', [
    (dict(weight=1.0), r'full_choice_loss: unknown keys'),
    (dict(loss_weight=-1), r'full_choice_loss.loss_weight must be a number'),
    (dict(smallest_weight=-0.5),
     r'full_choice_loss.smallest_weight must be a number >= 0'),
    (dict(smallest_weight=True),
     r'full_choice_loss.smallest_weight must be a number >= 0'),
    (dict(random_weight=-1),
     r'full_choice_loss.random_weight must be a number >= 0'),
    ('yes', r'full_choice_loss must be a dict'),
])
def test_full_choice_loss_refuses_bad_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        _Model(full_choice_loss=bad)
