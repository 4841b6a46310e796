# Copyright (c) varedd_mm contributors. All rights reserved.
"""Static filter pruning of a base recognizer to a GFLOPs target (the
baselines of Table 7 of the paper), with torch-pruning's dependency graph
(``pip install torch-pruning``; the ``prune`` extra).

Criteria (``method``):

* ``l1``: L1 norm of each filter group (Li et al., 2017),
* ``slimming``: the BN scale of each channel (network slimming, Liu et
  al., 2017; without the sparsity training of the paper: the trained BN
  scales are ranked as they are),
* ``fpgm``: distance to the geometric median of the layer's filters (He et
  al., 2019).

Every conv, norm and linear of the backbone and the neck may be pruned
(torch-pruning keeps the residual connections consistent); the
classifier's output stays. The uniform per-layer ratio is found by
bisection until the pruned model's GFLOPs per clip are within ``tol`` of
the target.
"""
import copy
from typing import Sequence, Tuple

import torch
import torch.nn as nn

from varedd_mm.ops.flops import clip_gflops, track_flops, untrack_flops

METHODS = ('l1', 'slimming', 'fpgm')


def _importance(method: str):
    import torch_pruning as tp
    if method == 'l1':
        return tp.importance.GroupMagnitudeImportance(p=1)
    if method == 'slimming':
        return tp.importance.BNScaleImportance()
    if method == 'fpgm':
        return tp.importance.FPGMImportance()
    raise ValueError(f'method must be one of {METHODS}, got {method!r}')


@torch.no_grad()
def network_gflops(net: nn.Module, example: torch.Tensor) -> float:
    """GFLOPs (multiply-adds / 1e9) per clip of ``net`` on ``example``,
    counted as :func:`varedd_mm.clip_gflops` counts every model."""
    was_training = net.training
    net.eval()
    track_flops(net)
    try:
        net(example)
        return float(clip_gflops(net)[0])
    finally:
        untrack_flops(net)
        net.train(was_training)


def prune_network(net: nn.Module, example: torch.Tensor, ratio: float,
                  method: str, keep: Sequence[nn.Module]) -> nn.Module:
    """Prune ``ratio`` of the channels of every prunable layer of ``net`` in
    place (``keep``: layers whose outputs stay)."""
    import torch_pruning as tp
    pruner = tp.pruner.MetaPruner(
        net,
        example,
        importance=_importance(method),
        pruning_ratio=ratio,
        ignored_layers=list(keep))
    pruner.step()
    return net


def prune_to_gflops(net: nn.Module,
                    example: torch.Tensor,
                    target_gflops: float,
                    method: str,
                    keep: Sequence[nn.Module],
                    tol: float = 0.02,
                    max_steps: int = 14) -> Tuple[nn.Module, float, float]:
    """Bisect the per-layer pruning ratio until ``net`` pruned by ``method``
    costs ``target_gflops`` per clip (within ``tol``, relative).

    Returns:
        tuple: the pruned copy of ``net``, its GFLOPs per clip and the
        ratio.

    Raises:
        ValueError: for a target at or above the unpruned cost, or below
            what pruning 95 % of the channels reaches.
    """
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    full = network_gflops(net, example)
    if not 0 < target_gflops < full:
        raise ValueError(f'target_gflops must be in (0, {full:.3f}) (the '
                         f'unpruned model), got {target_gflops}')
    keep_names = [
        n for n, m in net.named_modules() if any(m is k for k in keep)
    ]

    def trial(ratio):
        pruned = copy.deepcopy(net)
        kept = [pruned.get_submodule(n) for n in keep_names]
        prune_network(pruned, example, ratio, method, kept)
        return pruned, network_gflops(pruned, example)

    lo, hi = 0.0, 0.95
    best = None
    for _ in range(max_steps):
        mid = (lo + hi) / 2
        pruned, gflops = trial(mid)
        if best is None or abs(gflops - target_gflops) < abs(best[1] -
                                                             target_gflops):
            best = (pruned, gflops, mid)
        if abs(gflops - target_gflops) <= tol * target_gflops:
            break
        if gflops > target_gflops:
            lo = mid
        else:
            hi = mid
    if abs(best[1] - target_gflops) > 0.05 * target_gflops:
        raise ValueError(
            f'pruning reached {best[1]:.3f} GFLOPs at best (ratio '
            f'{best[2]:.3f}), not within 5 % of target_gflops '
            f'{target_gflops} (the unpruned model: {full:.3f})')
    return best
