# Copyright (c) varedd_mm contributors. All rights reserved.
"""``policy_rank``: the counterfactual deltas and the gates' ranking loss."""
import itertools
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from varedd_mm import VARED2Conv3d, dynamic_layers, fixed_policy
from varedd_mm.ops.policy_rank import (PolicyRanker, counterfactual_deltas,
                                       frozen_running_stats, parse_policy_rank,
                                       rank_loss, split_labels)


def _net(dims=('temporal', 'channel'), search_space=2, **gate):
    cfg = dict(dims=dims, search_space=search_space, gate=gate)
    return nn.Sequential(
        VARED2Conv3d(4, 8, 3, padding=1, bias=False, dynamic_cfg=cfg),
        nn.BatchNorm3d(8), nn.ReLU(),
        VARED2Conv3d(8, 8, 3, padding=1, bias=False, dynamic_cfg=cfg),
        nn.BatchNorm3d(8), nn.AdaptiveAvgPool3d(1), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(8, 3))


def _layers(net):
    return [m for _, m in dynamic_layers(net)]


def _reference(logits, delta, temperature=1.0, option=1):
    """The RankNet loss and accuracy written pair by pair (``option``: the
    log-odds of that option or a cheaper one against a dearer one)."""

    def lse(values):
        return math.log(sum(math.exp(v / temperature) for v in values))

    s = [lse(row[option:]) - lse(row[:option]) for row in logits.tolist()]
    d = delta.tolist()
    pairs = [(a, b, d[b] - d[a])
             for a, b in itertools.permutations(range(len(d)), 2)
             if d[b] > d[a]]
    total = sum(w for _, _, w in pairs)
    loss = sum(w / total * math.log1p(math.exp(-(s[a] - s[b])))
               for a, b, w in pairs)
    acc = sum(w / total * (1.0 if s[a] > s[b] else 0.5 if s[a] == s[b] else 0)
              for a, b, w in pairs)
    return loss, acc


def test_rank_loss_is_ranknet_over_weighted_pairs_and_ignores_shifts():
    net = _net().train()
    # gates with spread-out logits: a visible loss and a non-trivial order
    for m in _layers(net):
        nn.init.normal_(m.gate.fc2.weight, std=2.0)
    net(torch.randn(5, 4, 4, 6, 6))
    delta = torch.tensor([0.3, -0.1, 0.9, 0.3, 0.05])
    out = rank_loss(_layers(net), {'temporal': delta})
    refs = [
        _reference(m.gate.head(m.last_gate_features)[0].detach(), delta)
        for m in _layers(net)
    ]
    assert float(out['loss'].detach()) == pytest.approx(
        sum(r[0] for r in refs) / len(refs), rel=1e-5)
    assert float(out['acc_temporal']) == pytest.approx(
        sum(r[1] for r in refs) / len(refs), rel=1e-5)
    # a common shift of every clip's log-odds leaves the loss unchanged: the
    # level is the efficiency loss's business
    with torch.no_grad():
        for m in _layers(net):
            m.gate.fc2.bias[1] += 3.0  # the temporal half option
    shifted = rank_loss(_layers(net), {'temporal': delta})
    torch.testing.assert_close(shifted['loss'], out['loss'])
    # and so does a constant (or a common shift) of the deltas
    torch.testing.assert_close(
        rank_loss(_layers(net), {'temporal': delta + 5.0})['loss'],
        shifted['loss'])


def test_rank_loss_of_a_further_option_ranks_that_step():
    net = _net(dims=('temporal', ), search_space=3).train()
    for m in _layers(net):
        nn.init.normal_(m.gate.fc2.weight, std=2.0)
    net(torch.randn(4, 4, 4, 6, 6))
    first = torch.tensor([0.2, 0.0, 0.5, 0.1])
    second = torch.tensor([1.0, 0.3, 0.2, 0.6])
    out = rank_loss(_layers(net), {'temporal': first, 'temporal_2': second})
    refs = []
    for m in _layers(net):
        logits = m.gate.head(m.last_gate_features)[0].detach()
        assert logits.shape[1] == 3
        refs += [_reference(logits, first), _reference(logits, second, 1.0, 2)]
    # the mean over gates and ranked options
    assert float(out['loss'].detach()) == pytest.approx(
        sum(r[0] for r in refs) / len(refs), rel=1e-5)
    assert float(out['acc_temporal_2']) == pytest.approx(
        sum(r[1] for r in refs[1::2]) / len(refs[1::2]), rel=1e-5)
    # a common shift of the quarter option's logit moves option 2's log-odds
    # for every clip alike: option 2's terms do not change
    only_second = rank_loss(_layers(net), {'temporal_2': second})
    with torch.no_grad():
        for m in _layers(net):
            m.gate.fc2.bias[2] += 3.0
    torch.testing.assert_close(
        rank_loss(_layers(net), {'temporal_2': second})['loss'],
        only_second['loss'])
    # a gate with two options cannot rank a third
    net2 = _net(dims=('temporal', )).train()
    net2(torch.randn(4, 4, 4, 6, 6))
    with pytest.raises(RuntimeError, match="'temporal_2' rank option 2"):
        rank_loss(_layers(net2), {'temporal_2': second})
    for key in ('temporal_1', 'temporal_0', 'space', 'temporal_x'):
        with pytest.raises(ValueError, match='unknown deltas key'):
            rank_loss(_layers(net), {key: second})


def test_rank_loss_trains_the_gate_mlps_to_reduce_the_cheap_clip():
    net = _net().train()
    net(torch.randn(2, 4, 4, 6, 6))
    layers = _layers(net)

    def log_odds(m):  # of the channel half option, per clip
        lc = m.gate.head(m.last_gate_features)[1]
        return lc[:, 1] - lc[:, 0]

    before = [log_odds(m).detach() for m in layers]
    # clip 0 loses nothing from reducing channels, clip 1 a lot
    out = rank_loss(layers, {'channel': torch.tensor([0.0, 1.0])})
    out['loss'].backward()
    for m in layers:
        kt = m.gate.num_temporal
        # the temporal logits are not ranked; a common shift of the
        # channel logits gets no push (the level is left to the budget)
        assert not m.gate.fc2.weight.grad[:kt].any()
        assert not m.gate.fc2.bias.grad[:kt].any()
        assert float(m.gate.fc2.bias.grad[kt:].sum().abs()) < 1e-7
    # only the gate MLPs: no gradient reaches the convs they pool
    assert all(m.weight.grad is None for m in layers)
    with torch.no_grad():
        for m in layers:
            for p in (m.gate.fc1.weight, m.gate.fc2.weight):
                p -= 100.0 * p.grad
    for m, old in zip(layers, before):
        new = log_odds(m).detach()
        # clip 0's log-odds of reducing rose relative to clip 1's
        assert new[0] - new[1] > old[0] - old[1]


def _log_odds(m, option=1):
    """A gate's log-odds of reducing ``temporal`` per clip (option or
    cheaper against dearer), recomputed from what it read."""
    lt = m.gate.head(m.last_gate_features)[0] / m.gate.temperature
    return (torch.logsumexp(lt[:, option:], 1) -
            torch.logsumexp(lt[:, :option], 1))


def test_split_labels_the_clips_below_the_quantile_and_sets_levels():
    net = _net(dims=('temporal', )).train()
    for m in _layers(net):
        nn.init.normal_(m.gate.fc2.weight, std=2.0)
    net(torch.randn(5, 4, 4, 6, 6))
    delta = torch.tensor([0.3, -0.1, 0.9, 0.2, 0.05])
    out = rank_loss(_layers(net), {'temporal': delta}, split=0.5)
    # the median is 0.2: clips 1 and 4 are labelled "reduce", 0, 2, 3
    # "keep" (strictly below the quantile)
    labels = torch.tensor([0.0, 1.0, 0.0, 0.0, 1.0])
    refs, accs = [], []
    for m in _layers(net):
        s = _log_odds(m).detach().tolist()
        refs.append(-sum(y * math.log(1 / (1 + math.exp(-v))) +
                         (1 - y) * math.log(1 - 1 / (1 + math.exp(-v)))
                         for v, y in zip(s, labels.tolist())) / len(s))
        accs.append(
            sum((v > 0) == bool(y)
                for v, y in zip(s, labels.tolist())) / len(s))
    assert float(out['split_loss'].detach()) == pytest.approx(
        sum(refs) / len(refs), rel=1e-5)
    assert float(out['split_acc_temporal']) == pytest.approx(
        sum(accs) / len(accs))
    # the ranking term is the same as without labels
    torch.testing.assert_close(
        out['loss'],
        rank_loss(_layers(net), {'temporal': delta})['loss'])
    # not invariant to a common shift: the labels set each gate's level
    with torch.no_grad():
        for m in _layers(net):
            m.gate.fc2.bias[1] += 3.0
    shifted = rank_loss(_layers(net), {'temporal': delta}, split=0.5)
    assert float(shifted['split_loss'].detach()) != pytest.approx(
        float(out['split_loss'].detach()), rel=1e-3)
    # another quantile, other labels: 0.8 -> only clip 2 is kept
    high = rank_loss(_layers(net), {'temporal': delta}, split=0.8)
    refs = []
    for m in _layers(net):
        s = _log_odds(m).detach()
        refs.append(
            F.binary_cross_entropy_with_logits(
                s, torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0])))
    torch.testing.assert_close(high['split_loss'].detach(),
                               torch.stack(refs).mean())


def test_split_labels_ties_at_the_quantile_reduce_when_none_is_below():
    # below the quantile where some clip is
    assert split_labels(torch.tensor([0.3, -0.1, 0.9, 0.2]),
                        0.5).tolist() == [0.0, 1.0, 0.0, 1.0]
    # the cheapest clips tied at it (loss 0 at both choices): they reduce,
    # not every clip keeps
    assert split_labels(torch.tensor([0.0, 0.0, 0.0, 1.0]),
                        0.5).tolist() == [1.0, 1.0, 1.0, 0.0]
    assert split_labels(torch.tensor([0.0, 1.0, 0.0, 1.0]),
                        0.25).tolist() == [1.0, 0.0, 1.0, 0.0]
    # half-precision deltas (torch.quantile takes float / double only)
    assert split_labels(
        torch.tensor([0.5, 0.0, 2.0], dtype=torch.float16),
        0.5).tolist() == [0.0, 1.0, 0.0]


def test_split_pushes_the_cheap_clips_to_reduce_and_the_dear_to_keep():
    net = _net(dims=('temporal', )).train()
    net(torch.randn(4, 4, 4, 6, 6))
    layers = _layers(net)
    before = [_log_odds(m).detach() for m in layers]
    delta = torch.tensor([0.0, 2.0, 0.1, 1.5])
    out = rank_loss(layers, {'temporal': delta}, split=0.5)
    out['split_loss'].backward()
    # the labels move each gate's level too (unlike the ranking), and only
    # the gate MLPs learn
    assert all(float(m.gate.fc2.bias.grad.abs().sum()) > 0 for m in layers)
    assert all(m.weight.grad is None for m in layers)
    with torch.no_grad():
        for m in layers:
            for p in (m.gate.fc1.weight, m.gate.fc2.weight, m.gate.fc2.bias):
                p -= 10.0 * p.grad
    for m, old in zip(layers, before):
        new = _log_odds(m).detach()
        # clips 0 and 2 (below the median) more likely reduced, absolutely;
        # clips 1 and 3 less likely
        assert (new[[0, 2]] > old[[0, 2]]).all()
        assert (new[[1, 3]] < old[[1, 3]]).all()


def test_split_without_spread_is_zero_and_connected():
    net = _net(dims=('temporal', )).train()
    net(torch.randn(3, 4, 4, 6, 6))
    out = rank_loss(
        _layers(net), {'temporal': torch.tensor([0.4, 0.4, 0.4])}, split=0.5)
    assert float(out['split_loss']) == 0.0 and out['split_loss'].requires_grad
    assert 'split_acc_temporal' not in out


def test_policy_ranker_weighs_and_logs_the_split():
    net = _net(dims=('temporal', )).train()
    layers = _layers(net)
    net(torch.randn(4, 4, 4, 6, 6))
    delta = torch.tensor([0.0, 2.0, 0.1, 1.5])
    measured = [(layers, {'temporal': delta})]
    ranker = PolicyRanker(
        dict(loss_weight=2.0, split=0.5, split_weight=0.25), layers, 'p')
    out = ranker.loss(measured)
    ref = rank_loss(layers, {'temporal': delta}, split=0.5)
    torch.testing.assert_close(out['loss_policy'], 2.0 * ref['loss'])
    torch.testing.assert_close(out['loss_policy_split'],
                               2.0 * 0.25 * ref['split_loss'])
    torch.testing.assert_close(out['policy_split_acc_temporal'],
                               ref['split_acc_temporal'])
    plain = PolicyRanker(dict(loss_weight=2.0), layers, 'p').loss(measured)
    assert sorted(set(out) - set(plain)) == [
        'loss_policy_split', 'policy_split_acc_temporal'
    ]


def test_rank_accuracy_counts_ties_half():
    net = _net().train()
    net(torch.randn(3, 4, 4, 6, 6))
    for m in _layers(net):  # every clip the same logits
        m.last_gate_features = m.last_gate_features[:1].expand(3, -1)
    out = rank_loss(_layers(net), {'temporal': torch.tensor([0.0, 1.0, 2.0])})
    assert float(out['acc_temporal']) == pytest.approx(0.5)
    assert float(out['loss']) == pytest.approx(math.log(2.0), rel=1e-6)


def test_rank_loss_without_pairs_is_zero_and_connected():
    net = _net().train()
    net(torch.randn(1, 4, 4, 6, 6))
    out = rank_loss(_layers(net), {'temporal': torch.tensor([0.4])})
    assert float(out['loss']) == 0.0 and out['loss'].requires_grad
    out['loss'].backward()  # a zero gradient, not an error
    grad = _layers(net)[0].gate.fc2.weight.grad
    assert grad is not None and not grad.any()


def test_rank_loss_needs_gates_that_ran():
    net = _net()
    with fixed_policy(net, 1, 1):
        net(torch.randn(2, 4, 4, 6, 6))
    with pytest.raises(RuntimeError, match='no gate ran'):
        rank_loss(_layers(net), {'temporal': torch.tensor([0.0, 1.0])})
    net.train()(torch.randn(3, 4, 4, 6, 6))
    with pytest.raises(RuntimeError, match='ran on 3 clips'):
        rank_loss(_layers(net), {'temporal': torch.tensor([0.0, 1.0])})


def test_counterfactual_deltas_match_forced_forwards_and_leave_no_trace():
    torch.manual_seed(0)
    net = _net().train()
    x = torch.randn(4, 4, 4, 6, 6)
    y = torch.tensor([0, 1, 2, 0])
    state = {k: v.clone() for k, v in net.state_dict().items()}

    def clip_losses():
        return F.cross_entropy(net(x), y, reduction='none')

    deltas, ran = counterfactual_deltas(net, clip_losses,
                                        ('temporal', 'channel'))
    assert ran == _layers(net)
    # no running statistic, counter or parameter moved; modes restored
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(m.training for m in net.modules())
    assert all(m.forced_choice is None for m in _layers(net))
    # the same forced forwards by hand: training-mode BN, dropout off
    net[7].eval()
    with torch.no_grad():
        with fixed_policy(net, 0, 0):
            full = clip_losses()
        with fixed_policy(net, 1, 0):
            temporal = clip_losses() - full
        with fixed_policy(net, 0, 1):
            channel = clip_losses() - full
    torch.testing.assert_close(deltas['temporal'], temporal, rtol=0, atol=0)
    torch.testing.assert_close(deltas['channel'], channel, rtol=0, atol=0)
    assert not torch.equal(temporal, torch.zeros(4))


def test_counterfactual_deltas_of_every_option_are_steps():
    torch.manual_seed(0)
    net = _net(search_space=3).train()
    x = torch.randn(4, 4, 4, 6, 6)
    y = torch.tensor([0, 1, 2, 0])

    def clip_losses():
        return F.cross_entropy(net(x), y, reduction='none')

    deltas, _ = counterfactual_deltas(net, clip_losses,
                                      ('temporal', 'channel'),
                                      dict(temporal=2, channel=1))
    assert sorted(deltas) == ['channel', 'temporal', 'temporal_2']
    net[7].eval()
    with torch.no_grad():
        with fixed_policy(net, 0, 0):
            full = clip_losses()
        with fixed_policy(net, 1, 0):
            half = clip_losses()
        with fixed_policy(net, 2, 0):
            quarter = clip_losses()
        with fixed_policy(net, 0, 1):
            channel = clip_losses()
    torch.testing.assert_close(deltas['temporal'], half - full, rtol=0, atol=0)
    # option 2 against option 1, not against the full choice
    torch.testing.assert_close(
        deltas['temporal_2'], quarter - half, rtol=0, atol=0)
    torch.testing.assert_close(
        deltas['channel'], channel - full, rtol=0, atol=0)
    assert not torch.equal(quarter, half)


def test_only_the_layers_the_task_loss_ran_through_are_ranked():
    net = _net().train()
    x = torch.randn(3, 4, 4, 6, 6)
    first = _layers(net)[0]
    deltas, ran = counterfactual_deltas(net,
                                        lambda: first(x).flatten(1).mean(1),
                                        ('channel', ))
    assert ran == [first]
    assert deltas['channel'].shape == (3, )


def test_one_layer_alone_is_forced_the_others_run_their_gates():
    torch.manual_seed(0)
    # Gumbel noise and standardised gate input: the gates that run draw
    # noise and update running statistics, which the counterfactual
    # forwards must neither vary between them nor leave behind
    net = _net(gumbel=True, norm_input=True).train()
    for m in _layers(net):
        nn.init.normal_(m.gate.fc2.weight, std=2.0)
    x = torch.randn(6, 4, 4, 6, 6)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    first, second = _layers(net)
    state = {k: v.clone() for k, v in net.state_dict().items()}

    def clip_losses():
        return F.cross_entropy(net(x), y, reduction='none')

    rng = torch.get_rng_state()
    deltas, ran = counterfactual_deltas(
        net, clip_losses, ('temporal', ), forced=second)
    assert ran == [second]
    assert torch.equal(torch.get_rng_state(), rng)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert first.forced_choice is None and second.forced_choice is None
    # by hand: the first layer's gate choosing (the same noise in both
    # forwards), the second forced
    net[7].eval()
    with torch.no_grad():
        with fixed_policy(second, 0, 0):
            full = clip_losses()
            full_choices = first.last_choice.clone()
        torch.set_rng_state(rng)
        with fixed_policy(second, 1, 0):
            half = clip_losses()
            assert torch.equal(first.last_choice, full_choices)
    torch.testing.assert_close(deltas['temporal'], half - full, rtol=0, atol=0)
    # the first layer really chose per clip (not forced)
    assert first.last_probs is not None
    assert not torch.equal(half, full)


def test_policy_ranker_takes_the_layers_in_turn_and_ranks_each_alone():
    net = _net(dims=('temporal', )).train()
    layers = _layers(net)
    x = torch.randn(5, 4, 4, 6, 6)
    y = torch.tensor([0, 1, 2, 0, 1])

    def clip_losses():
        return F.cross_entropy(net(x), y, reduction='none')

    ranker = PolicyRanker(dict(layers_per_step=1), layers, 'm.policy_rank')
    seen = []
    for step in range(3):
        measured = ranker.measure(net, clip_losses)
        (ranked, deltas), = measured
        seen.append(ranked)
        net.zero_grad()
        net(x)  # the training forward
        out = ranker.loss(measured)
        assert sorted(out) == [
            'loss_policy', 'policy_delta_temporal', 'policy_rank_acc_temporal'
        ]
        out['loss_policy'].backward()
        # only the ranked layer's gate MLP gets a gradient
        for m in layers:
            grad = m.gate.fc1.weight.grad
            pushed = grad is not None and bool(grad.abs().sum() > 0)
            assert pushed == (m is ranked[0]), step
        # and its deltas are its own reduction alone
        with torch.no_grad(), frozen_running_stats(net):
            with fixed_policy(ranked[0], 0, 0):
                full = clip_losses()
            with fixed_policy(ranked[0], 1, 0):
                half = clip_losses()
        torch.testing.assert_close(deltas['temporal'], half - full)
    assert seen == [[layers[0]], [layers[1]], [layers[0]]]
    # two per step: both, each with its own deltas
    both = PolicyRanker(dict(layers_per_step=2), layers, 'm')
    measured = both.measure(net, clip_losses)
    assert [r for r, _ in measured] == [[layers[0]], [layers[1]]]
    assert not torch.equal(measured[0][1]['temporal'],
                           measured[1][1]['temporal'])


def test_policy_ranker_measures_each_layer_along_its_own_dims():
    time_only = VARED2Conv3d(
        4, 8, 3, padding=1, bias=False, dynamic_cfg=dict(dims='temporal'))
    both = VARED2Conv3d(8, 8, 3, padding=1, bias=False)
    net = nn.Sequential(time_only, nn.ReLU(), both, nn.AdaptiveAvgPool3d(1),
                        nn.Flatten(), nn.Linear(8, 3)).train()
    x = torch.randn(4, 4, 4, 6, 6)
    y = torch.tensor([0, 1, 2, 0])

    def clip_losses():
        return F.cross_entropy(net(x), y, reduction='none')

    ranker = PolicyRanker(dict(layers_per_step=1), [time_only, both], 'm')
    measured = ranker.measure(net, clip_losses)
    assert sorted(measured[0][1]) == ['temporal']  # no channel forward
    net(x)
    out = ranker.loss(measured)
    assert 'policy_delta_channel' not in out
    assert 'policy_rank_acc_channel' not in out
    measured = ranker.measure(net, clip_losses)
    assert sorted(measured[0][1]) == ['channel', 'temporal']
    net(x)
    assert 'policy_rank_acc_channel' in ranker.loss(measured)


def test_policy_ranker_drops_a_layer_whose_gate_does_not_train():
    net = _net(dims=('temporal', )).train()
    first, second = _layers(net)
    first.eval()  # a frozen stage
    x = torch.randn(3, 4, 4, 6, 6)
    y = torch.tensor([0, 1, 2])

    def clip_losses():
        return F.cross_entropy(net(x), y, reduction='none')

    ranker = PolicyRanker(dict(layers_per_step=1), [first, second], 'm')
    measured = ranker.measure(net, clip_losses)
    assert measured[0][0] == [second]
    assert ranker._turns == [second]
    net(x)  # the training forward: the second's gate ran in training mode
    assert 'loss_policy' in ranker.loss(measured)


def test_policy_ranker_drops_a_layer_the_task_loss_does_not_run():
    net = _net(dims=('temporal', )).train()
    first, second = _layers(net)
    x = torch.randn(3, 4, 4, 6, 6)
    ranker = PolicyRanker(dict(layers_per_step=1), [first, second], 'm')
    # a task loss that only runs the first layer
    loss = lambda: first(x).flatten(1).mean(1)  # noqa: E731
    assert ranker.measure(net, loss)[0][0] == [first]
    # the second's turn: it leaves, the first takes its place
    assert [r for r, _ in ranker.measure(net, loss)] == [[first]]
    assert ranker._turns == [first]
    two = PolicyRanker(dict(layers_per_step=2), [first, second], 'm')
    assert [r for r, _ in two.measure(net, loss)] == [[first]]
    only_second = PolicyRanker(dict(layers_per_step=1), [second], 'm')
    with pytest.raises(RuntimeError, match='layers_per_step: none of the'):
        only_second.measure(net, loss)


def test_frozen_running_stats_restores_on_error():
    net = _net().train()
    before = net[1].running_mean.clone()
    with pytest.raises(KeyError):
        with frozen_running_stats(net):
            assert not net[7].training
            net(torch.randn(2, 4, 4, 6, 6))
            raise KeyError
    assert torch.equal(net[1].running_mean, before)
    assert int(net[1].num_batches_tracked) == 0
    assert net[7].training


@pytest.mark.parametrize('cfg,match', [
    ([1.0], 'must be a dict'),
    (dict(weight=1.0), 'unknown keys'),
    (dict(loss_weight=0), 'loss_weight must be a number > 0'),
    (dict(loss_weight=True), 'loss_weight must be a number > 0'),
    (dict(dims='temporal'), 'non-empty subset'),
    (dict(dims=()), 'non-empty subset'),
    (dict(dims=('space', )), 'non-empty subset'),
    (dict(dims=('channel', )), r"reduces \['channel'\]"),
    (dict(options='every'), r"options must be one of \('first', 'all'\)"),
    (dict(layers_per_step=0), 'layers_per_step must be None'),
    (dict(layers_per_step=True), 'layers_per_step must be None'),
    (dict(layers_per_step=1.0), 'layers_per_step must be None'),
    (dict(split=0), r'split must be None \(order only\) or a quantile'),
    (dict(split=1.0), r'split must be None \(order only\) or a quantile'),
    (dict(split=True), r'split must be None \(order only\) or a quantile'),
    (dict(split='median'), 'split must be None'),
    (dict(split=0.5, split_weight=0), 'split_weight must be a number > 0'),
    (dict(split_weight=2.0), 'without split it would do nothing'),
])
def test_parse_policy_rank_errors(cfg, match):
    layers = _layers(_net(dims=('temporal', )))
    with pytest.raises(ValueError, match=match):
        parse_policy_rank(cfg, layers)


def test_parse_policy_rank_defaults_to_the_reduced_dims():
    assert parse_policy_rank(None, _layers(_net())) is None
    assert parse_policy_rank({}, _layers(_net(dims=('temporal', )))) == dict(
        loss_weight=1.0,
        dims=('temporal', ),
        options=dict(temporal=1),
        layers_per_step=None,
        split=None,
        split_weight=1.0)
    assert parse_policy_rank(
        dict(
            dims=['channel', 'temporal'],
            loss_weight=2,
            layers_per_step=3,
            split=0.5,
            split_weight=3), _layers(_net())) == dict(
                loss_weight=2.0,
                dims=('temporal', 'channel'),
                options=dict(temporal=1, channel=1),
                layers_per_step=3,
                split=0.5,
                split_weight=3.0)
    # 'all': every reduced option of the search space (K - 1 of them)
    every = dict(options='all')
    three = parse_policy_rank(every, _layers(_net(search_space=3)))
    assert three['options'] == dict(temporal=2, channel=2)
    two = parse_policy_rank(every, _layers(_net()))
    assert two['options'] == dict(temporal=1, channel=1)
