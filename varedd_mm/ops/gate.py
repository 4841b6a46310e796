# Copyright (c) varedd_mm contributors. All rights reserved.
"""The soft-modulation gate: the per-clip policy network of one layer."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import GateSpec
from .native import native_applies, native_gate_pool


class PooledStandardize(nn.Module):
    """Per-feature standardisation of the gate's pooled input over the
    clips of a batch, with running statistics for inference (and for a
    training batch of one clip, which has no batch statistics).

    Deliberately not a ``_BatchNorm`` subclass: backbones that freeze their
    BNs (mmaction's and mmseg's ``norm_eval``, ``frozen_stages``) switch
    every ``_BatchNorm`` to eval mode, which would leave this one at its
    initial statistics (mean 0, variance 1: no standardisation at all), and
    BN folding or recalibration have nothing to do with it. Its buffers
    keep BatchNorm's names, so checkpoints carry them the same way.

    Args:
        features (int): Number of pooled features.
        momentum (float): Running-statistics momentum. Defaults to 0.1.
        eps (float): Added to the variance. Defaults to 1e-5.
    """

    def __init__(self,
                 features: int,
                 momentum: float = 0.1,
                 eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.register_buffer('running_mean', torch.zeros(features))
        self.register_buffer('running_var', torch.ones(features))
        self.register_buffer('num_batches_tracked',
                             torch.tensor(0, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch_stats = self.training and x.shape[0] > 1
        if batch_stats:
            self.num_batches_tracked.add_(1)
        # with batch_stats, F.batch_norm also updates the running buffers
        return F.batch_norm(x, self.running_mean, self.running_var, None, None,
                            batch_stats, self.momentum, self.eps)


class SoftModulationGate(nn.Module):
    """Global average pool -> Linear -> ReLU -> Linear -> two logit vectors.

    The gate reads the layer *input* (before the expensive conv runs) so that
    its decision can skip work. Its cost is ``C_in * T * H * W / s**2`` adds
    for the pooling (every ``s = pool_stride``-th pixel) plus
    ``C_in * hidden + hidden * (K_t + K_c)`` MACs, far below 0.5 % of any
    conv it drives (checked in the tests and the benchmark).

    Args:
        in_channels (int): Channels of the layer input.
        num_temporal (int): Number of temporal choices ``K_t`` (1 = none).
        num_channel (int): Number of channel choices ``K_c`` (1 = none).
        spec (GateSpec): Hidden width, temperature, Gumbel noise, init.
    """

    def __init__(self, in_channels: int, num_temporal: int, num_channel: int,
                 spec: GateSpec) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.num_temporal = num_temporal
        self.num_channel = num_channel
        self.temperature = spec.temperature
        self.gumbel = spec.gumbel
        self.straight_through = spec.straight_through
        self.normalize_grad = spec.normalize_grad
        self.hidden = spec.hidden(in_channels)
        self.input = spec.input
        # 'mean_tdiff' reads the pooled input and the pooled absolute
        # frame differences side by side
        features = in_channels * (2 if self.input == 'mean_tdiff' else 1)
        # per-feature standardisation over the clips of the batch
        self.in_norm = (
            PooledStandardize(features) if spec.norm_input else None)
        self.fc1 = nn.Linear(features, self.hidden)
        self.fc2 = nn.Linear(self.hidden, num_temporal + num_channel)
        self.init_bias_full = spec.init_bias_full
        self.pool_stride = spec.pool_stride
        self.last_features = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Small last layer so the policy starts near its bias."""
        nn.init.kaiming_uniform_(self.fc1.weight, a=5**0.5)
        nn.init.zeros_(self.fc1.bias)
        nn.init.normal_(self.fc2.weight, std=1e-3)
        with torch.no_grad():
            self.fc2.bias.zero_()
            self.fc2.bias[0] = self.init_bias_full
            self.fc2.bias[self.num_temporal] = self.init_bias_full

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled statistics the gate reads, ``(N, C_in)`` or, with
        ``input='mean_tdiff'``, ``(N, 2 C_in)``: the mean of ``x`` over
        every ``pool_stride``-th pixel in H and W (all frames), then the
        mean absolute difference of consecutive frames at those pixels.
        At inference (eval mode, no autograd) on the CPU in float32 the
        compiled kernel reads the sampled pixels once
        (``native.native_gate_pool``; same values to float rounding);
        training always uses the torch ops."""
        s = self.pool_stride
        tdiff = self.input == 'mean_tdiff'
        if not self.training and native_applies([x]):
            return native_gate_pool(x, s, tdiff)
        if s > 1:
            x = x[..., ::s, ::s]
        pooled = x.flatten(2).mean(dim=2)
        if tdiff:
            if x.shape[2] > 1:
                diff = (x[:, :, 1:] - x[:, :, :-1]).abs().flatten(2).mean(2)
            else:  # one frame: nothing changes
                diff = torch.zeros_like(pooled)
            pooled = torch.cat([pooled, diff], dim=1)
        return pooled

    def logits(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Policy logits of each clip.

        Args:
            x (torch.Tensor): Layer input, shape ``(N, C_in, *spatial)``.

        Returns:
            tuple[Tensor, Tensor]: temporal logits ``(N, K_t)`` and channel
            logits ``(N, K_c)``.
        """
        pooled = self.pool(x)
        if self.in_norm is not None:
            pooled = self.in_norm(pooled)
        #: what the MLP read in the last call, detached (``policy_rank``)
        self.last_features = pooled.detach()
        return self.head(pooled)

    def head(self,
             features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The gate MLP on pooled (and standardised) features: temporal
        and channel logits."""
        out = self.fc2(F.relu(self.fc1(features)))
        return out[:, :self.num_temporal], out[:, self.num_temporal:]

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Training-time soft policy of one dimension."""
        if self.gumbel and self.training:
            u = torch.rand_like(logits).clamp_(1e-6, 1 - 1e-6)
            logits = logits - torch.log(-torch.log(u))
        return F.softmax(logits / self.temperature, dim=1)

    def mixing_weights(self, probs: torch.Tensor,
                       out_numel_per_clip: int) -> torch.Tensor:
        """Weights of the choices in the training output: the soft
        probabilities, or with ``straight_through`` the one-hot arg-max whose
        gradient is that of the probabilities; with ``normalize_grad`` that
        gradient is divided by the output elements per clip."""
        grad = probs
        if self.normalize_grad:
            grad = probs / float(out_numel_per_clip)
        value = probs
        if self.straight_through:
            value = F.one_hot(probs.argmax(dim=1), probs.shape[1]).to(probs)
        if value is probs and grad is probs:
            return probs
        return value.detach() + (grad - grad.detach())

    def macs(self, in_shape) -> int:
        """Cost per clip for an input of ``in_shape`` (batch first):
        pooling adds over the sampled pixels plus the two linear layers."""
        s = self.pool_stride
        plane = -(-int(in_shape[-2]) // s) * -(-int(in_shape[-1]) // s)
        pooled = plane
        for size in in_shape[1:-2]:
            pooled *= int(size)
        macs = pooled + self.fc1.in_features * self.hidden + self.hidden * (
            self.num_temporal + self.num_channel)
        if self.input == 'mean_tdiff' and len(in_shape) == 5:
            # a subtraction and an add per sampled element of T - 1 frames
            macs += 2 * int(in_shape[1]) * (int(in_shape[2]) - 1) * plane
        if self.in_norm is not None:
            # a subtraction and a scale per gate input feature
            macs += 2 * self.fc1.in_features
        return macs
