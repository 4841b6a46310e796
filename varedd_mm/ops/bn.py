# Copyright (c) varedd_mm contributors. All rights reserved.
"""BatchNorm recalibration under the inference-time (hard) policy.

Which BNs: exactly those that (1) the model keeps in training mode after
``model.train()`` (so BNs that the model freezes on purpose, mmaction's and
mmseg's ``norm_eval`` and ``frozen_stages``, are left alone) and (2) run in
the forward that the caller gives, which for the runner hook is the model's
real inference forward (neck and heads included, auxiliary heads that only
run in training excluded). A BN that does not run keeps its statistics.

What is estimated: for each batch, the exact batch statistic of every
channel over all the elements the BN normalised in that forward, however
many calls it took (the (2+1)D conv's ``bn_s`` is reached once per choice
group, on the first ``m`` of its channels for reduced widths: each channel
is weighted by the elements it saw); then the average over the batches of
these batch means and unbiased batch variances (what ``nn.BatchNorm`` with
``momentum=None`` computes for a BN called once per batch, the "precise BN"
of the literature). A channel that no batch reached keeps its statistics.
With ``reduce`` (distributed training), the sums over batches are combined
over the processes before anything is written.

A BN reached once per choice group (the (2+1)D conv's ``bn_s`` under
grouped inference) normalises every group with the statistics of all the
groups of the batch (:func:`batch_moments`), as a BN called once on the
batch does: with each group's own statistics, and a policy that groups
the clips by content (still clips reduced, moving ones not: the point of
an adaptive policy), the layers after it would be estimated on
activations that inference never produces (a learned policy on the
harder synthetic benchmark lost 18 points of top-1 to that:
docs/engine.md, "Normalisation").
"""
from typing import Any, Callable, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from .dynamic_base import DynamicConvMixin

_RECORDER_ATTR = '_vared2_bn_recorder'


def recalibrating(bn: nn.Module) -> bool:
    """Whether :func:`recalibrate_bn` is estimating ``bn``'s statistics."""
    return getattr(bn, _RECORDER_ATTR, None) is not None


def record_bn_input(bn: nn.Module, x: torch.Tensor) -> None:
    """Report what ``bn`` normalises with batch statistics in this call.

    ``x`` holds the first ``x.shape[1]`` channels of ``bn``. Does nothing
    unless :func:`recalibrate_bn` is running on ``bn``. Modules that call
    ``F.batch_norm`` on a slice of a BN's parameters call this; plain
    ``bn(x)`` calls are seen by a forward pre-hook.
    """
    recorder = getattr(bn, _RECORDER_ATTR, None)
    if recorder is not None:
        recorder.add(x)


def batch_moments(
        parts: List[torch.Tensor], running_mean: torch.Tensor,
        running_var: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (biased) variance over every element of
    ``parts``, tensors ``(N, C_k, ...)`` that hold the first ``C_k``
    channels of a BN: each channel over the parts that reach it, weighted
    by their elements. What a BN called once on all of them normalises
    with. A channel that fewer than two elements reach has no batch
    statistic: it gets ``running_mean`` / ``running_var``, as a single
    value is normalised. Accumulated in float64, returned in the dtype of
    the running statistics (what ``F.batch_norm`` takes under autocast)."""
    s1 = running_mean.new_zeros(running_mean.shape, dtype=torch.float64)
    s2 = torch.zeros_like(s1)
    count = torch.zeros_like(s1)
    for x in parts:
        c = x.shape[1]
        dims = [0] + list(range(2, x.dim()))
        x = x.detach().double()
        s1[:c] += x.sum(dim=dims)
        s2[:c] += x.square().sum(dim=dims)
        count[:c] += x.numel() // c
    seen = count > 1
    n = count.clamp(min=1)
    mean = s1 / n
    var = (s2 / n - mean.square()).clamp(min=0)
    mean = torch.where(seen, mean, running_mean.double())
    var = torch.where(seen, var, running_var.double())
    return mean.to(running_mean.dtype), var.to(running_var.dtype)


class _BNStatistics:
    """Per-channel statistics of one BN over a recalibration pass, float64:
    Chan's parallel combination within a forward, plain averages of the
    per-batch statistics across forwards."""

    def __init__(self, bn: _BatchNorm) -> None:
        zeros = bn.running_mean.new_zeros(bn.num_features, dtype=torch.float64)
        self.count, self.mean, self.m2 = zeros.clone(), zeros.clone(), zeros
        self.sum_mean = zeros.clone()
        self.sum_var = zeros.clone()
        self.batches = zeros.clone()

    @torch.no_grad()
    def add(self, x: torch.Tensor) -> None:
        c = x.shape[1]
        n = x.numel() // c
        if n < 2:
            return
        dims = [0] + list(range(2, x.dim()))
        var, mean = torch.var_mean(x.detach().float(), dim=dims, correction=0)
        mean, m2 = mean.double(), var.double() * n
        count_a, mean_a = self.count[:c], self.mean[:c]
        total = count_a + n
        delta = mean - mean_a
        self.m2[:c] += m2 + delta.square() * count_a * n / total
        self.mean[:c] += delta * n / total
        self.count[:c] = total

    def end_batch(self) -> None:
        seen = self.count > 1
        var = self.m2 / (self.count - 1).clamp(min=1)
        self.sum_mean += torch.where(seen, self.mean, 0.0)
        self.sum_var += torch.where(seen, var, 0.0)
        self.batches += seen.double()
        self.count.zero_()
        self.mean.zero_()
        self.m2.zero_()

    def totals(self) -> List[torch.Tensor]:
        """What summing over processes (distributed ranks) combines."""
        return [self.sum_mean, self.sum_var, self.batches]

    def seen(self) -> bool:
        return bool((self.batches > 0).any())

    def write(self, bn: _BatchNorm) -> None:
        seen = self.batches > 0
        batches = self.batches.clamp(min=1)
        mean = (self.sum_mean / batches).to(bn.running_mean.dtype)
        var = (self.sum_var / batches).to(bn.running_var.dtype)
        bn.running_mean.copy_(torch.where(seen, mean, bn.running_mean))
        bn.running_var.copy_(torch.where(seen, var, bn.running_var))
        bn.num_batches_tracked.copy_(self.batches.max().long())


def recalibration_targets(model: nn.Module) -> List[_BatchNorm]:
    """The BNs a recalibration may update: those in training mode (after the
    model's own ``train()``) that track running statistics."""
    return [
        m for m in model.modules() if isinstance(m, _BatchNorm) and m.training
        and m.track_running_stats and m.running_mean is not None
    ]


@torch.no_grad()
def recalibrate_bn(
        model: nn.Module,
        batches: Iterable[Any],
        forward: Optional[Callable[[nn.Module, Any], Any]] = None,
        max_batches: Optional[int] = None,
        reduce: Optional[Callable[[List[torch.Tensor]], None]] = None) -> int:
    """Re-estimate the running statistics of the BNs that run, with the
    dynamic layers taking their inference-time arg-max choices.

    Why: during training a BN after a dynamic conv sees the soft mixture of
    all choices; at inference each clip takes one hard choice. Running
    statistics measured on the mixture can be off for the hard outputs (the
    slimmable-network pitfall). This pass makes them the statistics of the
    outputs the model will actually produce. Which BNs are updated and what
    is estimated: see the module docstring. Affine parameters, weights and
    the BNs that the model keeps in eval mode are untouched.

    Args:
        model (nn.Module): The model; ``model.train()`` is called first (so
            its own ``norm_eval`` / ``frozen_stages`` logic decides which
            BNs stay frozen) and every module's mode is restored after.
        batches (Iterable): Inputs to run (for example a few training
            batches).
        forward (callable, optional): ``forward(model, batch)``; defaults to
            ``model(batch)``. Give the model's inference forward, so that
            exactly the BNs that run at inference are recalibrated.
        max_batches (int, optional): Stop after this many batches.
        reduce (callable, optional): Sums, in place, a list of tensors over
            processes (e.g. an all-reduce over distributed ranks); applied
            to the per-channel sums of batch statistics and batch counts
            before they are written, so every rank writes the statistics
            of all ranks' batches (a channel one rank never saw included).

    Returns:
        int: Number of batches used.
    """
    modes = {m: m.training for m in model.modules()}
    used, handles = 0, []
    recorders, written = {}, set()
    try:
        model.train()
        for m in model.modules():
            # hard inference policy in the dynamic layers and their gates,
            # no dropout; only the BNs normalise with batch statistics
            if isinstance(m, DynamicConvMixin):
                m.training = False
                m.gate.eval()
            elif isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        for bn in recalibration_targets(model):
            recorder = recorders[bn] = (_BNStatistics(bn), bn.momentum,
                                        bn.num_batches_tracked.clone())
            object.__setattr__(bn, _RECORDER_ATTR, recorder[0])
            handles.append(
                bn.register_forward_pre_hook(
                    lambda mod, args: record_bn_input(mod, args[0])))
            # the BN's own update would move the statistics of channels
            # and BNs that the pass does not reach: switch it off
            bn.momentum = 0.0
        for batch in batches:
            if max_batches is not None and used >= max_batches:
                break
            if forward is None:
                model(batch)
            else:
                forward(model, batch)
            for stats, _, _ in recorders.values():
                stats.end_batch()
            used += 1
        if used == 0:
            raise ValueError('recalibrate_bn: got no batches')
        if reduce is not None:
            reduce([
                t for stats, _, _ in recorders.values()
                for t in stats.totals()
            ])
        for bn, (stats, _, _) in recorders.items():
            if stats.seen():
                stats.write(bn)
                written.add(bn)
    finally:
        for h in handles:
            h.remove()
        for bn, (_, momentum, tracked) in recorders.items():
            bn.momentum = momentum
            if bn not in written:  # the BN's own counting of the pass
                bn.num_batches_tracked.copy_(tracked)
            object.__delattr__(bn, _RECORDER_ATTR)
        for m, mode in modes.items():
            m.training = mode
    return used
