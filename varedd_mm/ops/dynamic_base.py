# Copyright (c) varedd_mm contributors. All rights reserved.
"""The policy machinery every VA-RED² dynamic conv shares.

One forward of a dynamic layer (design and measurements in docs/engine.md):

* The gate reads the layer input and gives per-clip logits for the temporal
  choice ``i`` (stride multiplier ``R = 2**i``) and the channel choice ``j``
  (compute the first ``C_out / 2**j`` filters).
* **Training** (:meth:`DynamicConvMixin._forward_train`): the output is the
  expectation over all choices, weighted by the gate's soft probabilities
  (or, with ``gate.straight_through``, the arg-max choice's output with the
  gradient of the expectation). Every choice shares the conv weights.
* **Inference** (:meth:`DynamicConvMixin._forward_eval`): each clip takes
  its arg-max choice; clips are grouped by choice and each group runs only
  the reduced conv of its choice plus the cheap rebuild. Choice (0, 0) runs
  exactly the base conv.
* **Forced choice** (:func:`varedd_mm.fixed_policy`,
  :func:`varedd_mm.smallest_policy`,
  :meth:`DynamicConvMixin._forward_forced`): the gate does not run; every
  clip takes the forced choice, in training and at inference.
* **Cost records** (:meth:`DynamicConvMixin._record`), written by every
  forward: per-clip realised MACs (``last_macs``), the differentiable
  expected MACs (``last_expected_macs``), the full cost (``full_macs``) and
  the choices taken (``last_choice``), read by the efficiency loss and
  :func:`varedd_mm.clip_gflops`. They stay on the input's device.

What a reduced choice computes depends on the conv: for a plain conv the
reduced output *equals* the full output on the frames and channels it
computes (a strided conv gives the full conv's frames ``0, R, 2R, ...``, the
first filters give the first channels); for the (2+1)D conv a temporal
choice is an approximation that fine-tuning adapts to (its temporal taps
span ``R`` frames, see ``conv2plus1d.py``). In both cases only the rebuilt
part comes from the cheap ops, and choice (0, 0) is the base conv bit for
bit.

Host-device traffic: training and forced forwards never wait for the
device; an inference forward moves the ``N`` choice keys of its batch to
the host once (grouping needs the group sizes there), nothing else. The
per-choice cost tables live on the device, one per input shape.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log

from .backend import empty_like_layout, memory_format_of
from .cache import InferenceCache
from .cheap_ops import ChannelCheapOp, TemporalCheapOp, native_terms
from .config import DynamicSpec
from .fuse import bn_affine, fold_affine
from .gate import SoftModulationGate
from .native import native_applies, native_rebuild

Choice = Tuple[int, int]

#: parameter-name prefixes of what a dynamic conv adds to its base conv
DYNAMIC_PREFIXES = ('gate.', 'temporal_ops.', 'channel_ops.')

# distinct input shapes whose cost tables a layer keeps (segmentation at
# varying image sizes would otherwise grow them without bound)
_MAX_CACHED_SHAPES = 64


class DynamicConvMixin:
    """Policy machinery shared by every VA-RED² dynamic conv.

    A subclass calls :meth:`_init_dynamic` in ``__init__`` and implements:

    * ``_compute(x, i, j, into=None, residual=None)``: the inference path
      of choice ``(i, j)`` for a group of clips (reduced conv + cheap
      rebuild), with ``into`` and ``residual`` passed on to
      :meth:`_rebuild` (None returned when the output was written
      ``into``); at a choice without rebuild the conv applies ``residual``
      and :meth:`_out_relu` itself when ``into`` is None (see
      :meth:`forward`).
    * ``_compute_all(x)``: outputs of every choice for the training-time
      expectation, as a dict ``{(i, j): tensor}``.
    * ``_choice_macs(shape)``: MACs per clip of each choice (gate excluded)
      for an input of ``shape``, as a dict ``{(i, j): int}``; the rebuild
      part comes from :meth:`_rebuild_macs`.
    * ``_input_dim``: 4 (2D convs) or 5 (3D convs).
    * ``_output_conv()``: the conv module whose weights produce the layer's
      computed output (the layer itself, or the (2+1)D conv's ``conv_t``),
      for BN folding (:meth:`fuse_bn`).

    After :meth:`fuse_bn` (called by :func:`varedd_mm.ops.fuse_conv_bn`)
    the ``fused_*`` buffers hold the folded BN; ``_compute`` then runs the
    choices with the BN applied (see ``fuse.py``).
    """

    _input_dim = 5

    def _init_dynamic(self, spec: DynamicSpec, in_channels: int,
                      out_channels: int) -> None:
        self.dynamic_spec = spec
        self.search_space = spec.search_space
        self.dims = spec.dims
        self.gate = SoftModulationGate(in_channels, spec.num_temporal,
                                       spec.num_channel, spec.gate)
        self.temporal_ops = nn.ModuleList([
            TemporalCheapOp(out_channels, 2**i)
            for i in range(1, spec.num_temporal)
        ])
        self.channel_ops = nn.ModuleList([
            ChannelCheapOp(out_channels >> j, 2**j - 1)
            for j in range(1, spec.num_channel)
        ])
        self.choices: List[Choice] = [(i, j) for i in range(spec.num_temporal)
                                      for j in range(spec.num_channel)]
        self.forced_choice: Optional[Choice] = None
        self._macs_cache: Dict[tuple, Dict[Choice, int]] = {}
        self._cost_cache: Dict[tuple, torch.Tensor] = {}
        self._forced_cache: Dict[tuple, tuple] = {}
        self._inference_cache = InferenceCache()
        # the folded BN after this layer (inference only, see fuse_bn)
        for name in ('fused_scale', 'fused_shift', 'fused_weight',
                     'fused_bias'):
            self.register_buffer(name, None, persistent=False)
        self.fused_for_inference = False
        self.fused_relu = False  # the ReLU after the fused BN (fuse_relu)
        self.reset_records()

    def fuse_bn(self, bn: Optional[nn.Module]) -> None:
        """Apply ``bn`` (the eval-mode BN that follows this layer) inside
        the layer from now on, for inference: the reduced conv of a choice
        without channel rebuild runs with the BN folded into its weights;
        with a channel rebuild the computed channels get the affine as they
        are written into the output and the ghost filters carry the
        generated channels' affine; the temporal rebuild carries the shift.
        ``bn=None`` only folds what the layer holds inside (the (2+1)D
        conv's ``bn_s``). The caller replaces ``bn`` by an identity. The
        layer is then for inference only: its parameters stop requiring
        grad (as the fused base convs' do), and it refuses training and
        inputs that require grad."""
        self.fused_for_inference = True
        # inference only, as the fused base convs: no gradients to weights
        for p in self.parameters():
            p.requires_grad_(False)
        if bn is None:
            return
        scale, shift = bn_affine(bn)
        conv = self._output_conv()
        if scale.numel() != conv.out_channels:
            raise ValueError(f'{type(self).__name__}: cannot fuse a BN of '
                             f'{scale.numel()} channels after a conv of '
                             f'{conv.out_channels} output channels')
        self.fused_scale, self.fused_shift = scale, shift
        self.fused_weight, self.fused_bias = fold_affine(
            conv.weight, conv.bias, scale, shift)

    def fuse_relu(self) -> None:
        """Apply the ReLU that follows this layer's fused BN inside the
        layer, for inference: as a oneDNN post-op of the conv where there
        is no rebuild, else as the rebuild writes the output (one pass,
        :mod:`~varedd_mm.ops.native`; on the torch-op path an in-place
        ReLU after the rebuild). The caller replaces the ReLU by an
        identity."""
        if self.fused_scale is None:
            raise RuntimeError(f'{type(self).__name__}.fuse_relu: only the '
                               'ReLU after a fused BN folds in; fuse the BN '
                               'first (fuse_bn(bn))')
        self.fused_relu = True

    # ------------------------------------------------------------------
    # cost tables and records (read by clip_gflops / EfficiencyLoss / tools)
    def reset_records(self) -> None:
        """Forget what the last forward recorded."""
        self.last_choice: Optional[torch.Tensor] = None
        self.last_macs: Optional[torch.Tensor] = None
        self.last_expected_macs: Optional[torch.Tensor] = None
        self.full_macs: Optional[int] = None
        self.last_probs: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        self.last_gate_features: Optional[torch.Tensor] = None

    def macs_table(self, shape: Sequence[int]) -> Dict[Choice, int]:
        """MACs per clip of every choice for an input of ``shape`` (gate
        excluded), as Python ints."""
        key = tuple(shape[1:])
        table = self._macs_cache.get(key)
        if table is None:
            if len(self._macs_cache) >= _MAX_CACHED_SHAPES:
                self._macs_cache.clear()
            table = self._macs_cache[key] = self._choice_macs(tuple(shape))
        return table

    def cost_tensor(self, shape: Sequence[int],
                    device: torch.device) -> torch.Tensor:
        """:meth:`macs_table` as a float64 ``(K_t, K_c)`` tensor on
        ``device``, built once per input shape and device."""
        key = (tuple(shape[1:]), torch.device(device))
        costs = self._cost_cache.get(key)
        if costs is None:
            if len(self._cost_cache) >= _MAX_CACHED_SHAPES:
                self._cost_cache.clear()
            table = self.macs_table(shape)
            spec = self.dynamic_spec
            costs = torch.tensor(
                [[float(table[(i, j)]) for j in range(spec.num_channel)]
                 for i in range(spec.num_temporal)],
                dtype=torch.float64,
                device=device)
            self._cost_cache[key] = costs
        return costs

    def gate_macs(self, shape: Sequence[int]) -> int:
        """MACs per clip of the gate for an input of ``shape``."""
        return self.gate.macs(shape)

    def _rebuild_macs(self, i: int, j: int, computed_frames: int, t_out: int,
                      plane: int) -> int:
        """MACs per clip of the cheap rebuild of choice ``(i, j)``:
        ``computed_frames`` of ``t_out`` frames were computed (1 of 1 for
        2D convs), each with ``plane`` output pixels."""
        macs = 0
        if j > 0:
            macs += self.channel_ops[j - 1].macs(computed_frames * plane)
        if i > 0:
            macs += self.temporal_ops[i - 1].macs(
                self.out_channels * (t_out - computed_frames) * plane)
        return macs

    def _record(self,
                choice: torch.Tensor,
                costs: torch.Tensor,
                extra_macs: int,
                expected: Optional[torch.Tensor] = None,
                probs=None,
                gate_features=None) -> None:
        """Write the records of one forward (no host-device sync);
        ``gate_features`` (what the gate MLP read, detached) only in
        training, for ``policy_rank``."""
        self.last_choice = choice
        self.last_macs = costs[choice[:, 0], choice[:, 1]] + extra_macs
        self.last_expected_macs = (
            self.last_macs.float() if expected is None else expected)
        self.last_probs = probs
        self.last_gate_features = gate_features

    # ------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != self._input_dim or x.shape[1] != self.in_channels:
            layout = ('(N, C, T, H, W)'
                      if self._input_dim == 5 else '(N, C, H, W)')
            raise ValueError(
                f'{type(self).__name__} expects input of shape {layout} with '
                f'C={self.in_channels}, got {tuple(x.shape)}')

    def _validate_choice(self, choice: Choice) -> None:
        i, j = choice
        nt, nc = self.dynamic_spec.num_temporal, self.dynamic_spec.num_channel
        if not (0 <= i < nt and 0 <= j < nc):
            raise ValueError(
                f'{type(self).__name__}: choice {choice} is outside this '
                f'layer: temporal in [0, {nt - 1}], channel in [0, {nc - 1}] '
                f'(search_space={self.search_space}, dims={self.dims})')

    def _first_affine(self, c: int,
                      dim: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """The fused BN's ``(scale, shift)`` of the first ``c`` channels as
        broadcast tensors for ``dim``-dimensional outputs (cached)."""
        view = (1, c) + (1, ) * (dim - 2)
        return self._inference_cache.get(
            ('first_affine', c, dim), (self.fused_scale, self.fused_shift),
            lambda: (self.fused_scale[:c].reshape(view).contiguous(), self.
                     fused_shift[:c].reshape(view).contiguous()))

    def _out_relu(self, residual: Optional[torch.Tensor]) -> bool:
        """Whether the layer's output gets a ReLU: the one after its fused
        BN, or the residual block's after the sum."""
        return self.fused_relu or residual is not None

    def _rebuild(
            self,
            y: torch.Tensor,
            i: int,
            j: int,
            t_out: Optional[int],
            into: Optional[Tuple[torch.Tensor, List[int]]] = None,
            residual: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
        """Cheap rebuild: channels first (on the computed frames), then
        time (on all channels).

        With a fused BN (:meth:`fuse_bn`), ``y`` is the BN'd conv output
        when ``j == 0`` and the raw one when ``j > 0`` (the ghost filters
        read raw values, so their zero-padded borders stay exact); the
        output is BN'd either way. ``into = (out, rows)``: where the
        compiled kernel writes, it writes clip ``n`` straight into
        ``out[rows[n]]`` and None is returned (grouped inference).
        ``residual`` (fused inference, see :meth:`forward`): the output is
        ``relu(rebuilt + residual)``; with ``into`` it is the batch's
        (``out``-shaped) and is applied only where the output is written
        ``into`` (a returned output is without it: the caller adds it).
        """
        scale, shift = self.fused_scale, self.fused_shift
        first = None  # affine the computed channels still need
        blocks = [y]
        if j > 0:
            blocks += self.channel_ops[j - 1].blocks(
                y, scale, shift, cached=self.fused_for_inference)
            if scale is not None:
                first = self._first_affine(y.shape[1], y.dim())
        relu = self._out_relu(residual)
        if self.fused_for_inference and native_applies(blocks):
            # every output element written once, with its affine, the
            # residual and the ReLU
            if i > 0:
                coef = self.temporal_ops[i - 1].native_coef(
                    y.dim(), shift, first)
                return native_rebuild(blocks, t_out, 2**i, coef, relu, into,
                                      residual)
            coef = self._inference_cache.get(
                ('native_concat', y.shape[1], y.dim()),
                (scale, shift) + tuple(first or ()),
                lambda: native_terms(self.out_channels, first))
            return native_rebuild(blocks, y.shape[2] if y.dim() == 5 else 1, 1,
                                  coef, relu, into, residual)
        out = self._rebuild_torch(y, i, j, t_out, blocks, first)
        if residual is not None:
            if into is not None:  # the caller adds it and its ReLU
                return out  # (no fused ReLU with a residual)
            out = out.add_(residual)
        return out.relu_() if relu else out

    def _rebuild_torch(self, y, i, j, t_out, blocks, first):
        """The rebuild with torch ops (every device and dtype, autograd)."""
        shift = self.fused_shift
        if i > 0:
            # the temporal op writes the channel blocks straight into the
            # full-rate output: no concatenated intermediate
            return self.temporal_ops[i - 1](
                blocks,
                t_out,
                first_affine=first,
                shift=shift,
                cached=self.fused_for_inference)
        if len(blocks) == 1:
            return y
        if first is None:
            return torch.cat(blocks, dim=1)
        # the affine of the computed channels is applied as they are
        # copied into the output (the copy the concatenation makes anyway)
        out = empty_like_layout(y,
                                (y.shape[0], self.out_channels) + y.shape[2:])
        c = y.shape[1]
        torch.addcmul(first[1], y, first[0], out=out[:, :c])
        for b in blocks[1:]:
            out[:, c:c + b.shape[1]] = b
            c += b.shape[1]
        return out

    # ------------------------------------------------------------------
    def forward(self,
                x: torch.Tensor,
                residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Run the layer under its current policy.

        Args:
            x (torch.Tensor): ``(N, C_in, T, H, W)`` (3D) or
                ``(N, C_in, H, W)`` (2D).
            residual (torch.Tensor, optional): For a layer that ends a
                residual block, in a fused inference model
                (:func:`~varedd_mm.ops.fuse_conv_bn`): the block's shortcut,
                shaped like the output. The layer then returns ``relu(out
                + residual)``, the block's sum and ReLU written with the
                output (by the compiled rebuild, or at a choice without
                rebuild by the conv's post-op or one pass after it:
                :func:`~varedd_mm.ops.backend.reduced_conv`) instead of two
                more passes over it.

        Returns:
            torch.Tensor: Same shape as the base conv's output.
        """
        self._check_input(x)
        if self.fused_for_inference and (self.training or
                                         (torch.is_grad_enabled()
                                          and x.requires_grad)):
            raise RuntimeError(
                f'{type(self).__name__} has a BN fused in for inference '
                '(fuse_conv_bn): it neither trains nor passes gradients to '
                'its input; build the model again (unfused) for that')
        if residual is not None:
            self._check_residual(residual)
        if self.forced_choice is not None:
            return self._forward_forced(x, residual)
        costs = self.cost_tensor(x.shape, x.device)
        self.full_macs = self.macs_table(x.shape)[(0, 0)]
        lt, lc = self.gate.logits(x)
        gate_cost = self.gate_macs(x.shape)
        if self.training:
            return self._forward_train(x, lt, lc, costs, gate_cost)
        return self._forward_eval(x, lt, lc, costs, gate_cost, residual)

    def _check_residual(self, residual: torch.Tensor) -> None:
        if not self.fused_for_inference or self.training:
            raise RuntimeError(
                f'{type(self).__name__}: a residual is taken at inference by '
                'a fused model only (fuse_conv_bn on an eval-mode model)')
        if self.fused_relu:
            raise RuntimeError(
                f'{type(self).__name__}: a residual cannot follow the ReLU '
                'fused after this layer\'s BN (the block sum comes before '
                'its ReLU)')

    def _forward_forced(
            self,
            x: torch.Tensor,
            residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Every clip takes the forced choice; the gate does not run. The
        records are views built once per choice, input shape (batch size
        included) and device: a forced forward runs no bookkeeping
        kernel."""
        i, j = self.forced_choice
        key = (i, j, x.shape, x.device)
        records = self._forced_cache.get(key)
        if records is None:
            if len(self._forced_cache) >= _MAX_CACHED_SHAPES:
                self._forced_cache.clear()
            n = x.shape[0]
            macs = self.cost_tensor(x.shape, x.device)[i, j]
            choice = torch.tensor([[i, j]], device=x.device).expand(n, 2)
            full = self.macs_table(x.shape)[(0, 0)]
            records = (choice, macs.expand(n), macs.float().expand(n), full)
            self._forced_cache[key] = records
        (self.last_choice, self.last_macs, self.last_expected_macs,
         self.full_macs) = records
        self.last_probs = self.last_gate_features = None
        return self._compute(x, i, j, residual=residual)

    def _forward_train(self, x: torch.Tensor, lt: torch.Tensor,
                       lc: torch.Tensor, costs: torch.Tensor,
                       gate_cost: int) -> torch.Tensor:
        """Expectation over the choices (or straight-through arg-max)."""
        pt, pc = self.gate.probs(lt), self.gate.probs(lc)
        # the recorded choice is the arg-max of the probabilities the
        # straight-through forward uses (with Gumbel noise: the sample)
        choice = torch.stack([pt.argmax(dim=1), pc.argmax(dim=1)], dim=1)
        joint = pt.unsqueeze(2) * pc.unsqueeze(1)  # (N, K_t, K_c)
        expected = (joint *
                    costs.to(joint.dtype)).flatten(1).sum(dim=1) + gate_cost
        self._record(choice.detach(), costs, gate_cost, expected, (pt, pc),
                     self.gate.last_features)
        outs = self._compute_all(x)
        numel = outs[(0, 0)][0].numel()
        mix = (
            self.gate.mixing_weights(pt, numel).unsqueeze(2) *
            self.gate.mixing_weights(pc, numel).unsqueeze(1))
        bshape = (x.shape[0], ) + (1, ) * (x.dim() - 1)
        out = None
        for (i, j), y in outs.items():
            term = y * mix[:, i, j].view(bshape)
            out = term if out is None else out + term
        return out

    def _forward_eval(self,
                      x: torch.Tensor,
                      lt: torch.Tensor,
                      lc: torch.Tensor,
                      costs: torch.Tensor,
                      gate_cost: int,
                      residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Each clip's arg-max choice, clips grouped by choice."""
        choice = torch.stack([lt.argmax(dim=1), lc.argmax(dim=1)], dim=1)
        self._record(choice, costs, gate_cost, None,
                     (F.softmax(lt, dim=1), F.softmax(lc, dim=1)))
        return self._compute_grouped(x, choice, residual)

    def _compute_grouped(
            self,
            x: torch.Tensor,
            choice: torch.Tensor,
            residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Run each group of clips that share a choice once.

        The choice keys go to the host once (the group sizes decide which
        reduced convs run). Without autograd a group is gathered and its
        result scattered clip by clip (each clip is one contiguous block in
        both memory formats, so these are plain copies; aten's
        ``index_select`` / ``index_copy_`` over the batch dim ran several
        times slower here), and a group of consecutive clips is a view of
        the batch, not a copy. With autograd they go through
        ``index_select`` / ``index_copy_``. With a ``residual``
        (:meth:`forward`) the batch output is allocated first and every
        group the compiled rebuild writes takes its rows of the residual
        there; the other groups add theirs as they are copied in.
        """
        kc = self.dynamic_spec.num_channel
        key = choice[:, 0] * kc + choice[:, 1]
        keys = key.tolist()
        first = keys[0]
        if all(k == first for k in keys):
            return self._compute(x, first // kc, first % kc, residual=residual)
        # (a residual comes with a fused layer, which takes no autograd)
        autograd = torch.is_grad_enabled() and x.requires_grad
        groups: Dict[int, List[int]] = {}
        for n, k in enumerate(keys):
            groups.setdefault(k, []).append(n)
        out = None
        if residual is not None:
            out = torch.empty(
                residual.shape,
                dtype=residual.dtype,
                device=residual.device,
                memory_format=memory_format_of(x))
        # without a residual the first group allocates the output
        for k in sorted(groups):
            clips = groups[k]
            run = clips[-1] - clips[0] + 1 == len(clips)  # consecutive
            if autograd:
                idx = torch.tensor(clips, device=x.device)
                sub = x.index_select(
                    0, idx).contiguous(memory_format=memory_format_of(x))
            elif run:
                sub = x[clips[0]:clips[-1] + 1]
            else:  # the group keeps the batch's memory format
                sub = empty_like_layout(x, (len(clips), ) + x.shape[1:])
                for m, n in enumerate(clips):
                    sub[m].copy_(x[n])
            # the compiled rebuild writes a reduced group's clips straight
            # into the batch output (no scatter copy)
            if autograd or out is None:
                y = self._compute(sub, k // kc, k % kc)
            else:
                y = self._compute(sub, k // kc, k % kc, (out, clips), residual)
                if y is None:  # written into out
                    continue
            if out is None:
                # the batch's memory format, whatever a group's conv chose
                out = torch.empty(
                    (x.shape[0], ) + y.shape[1:],
                    dtype=y.dtype,
                    device=y.device,
                    memory_format=memory_format_of(x))
            if autograd:
                out.index_copy_(0, idx, y)
            elif residual is not None:
                rows = [(clips[0], clips[-1] + 1)] if run else [(n, n + 1)
                                                                for n in clips]
                for m, (a, b) in enumerate(rows):
                    src = y if run else y[m:m + 1]
                    torch.add(src, residual[a:b], out=out[a:b]).relu_()
            elif run:
                out[clips[0]:clips[-1] + 1].copy_(y)
            else:
                for m, n in enumerate(clips):
                    out[n].copy_(y[m])
        return out

    # ------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        """Refuse shape mismatches loudly and report fresh dynamic params.

        mmengine's ``load_checkpoint(strict=False)`` (``load_from``) turns a
        size mismatch into a warning and keeps the random init, which for a
        shared conv weight silently ruins the model: raise instead.
        """
        own = dict(self.named_parameters())
        own.update(self.named_buffers())
        for name, value in own.items():
            key = prefix + name
            if key in state_dict and value is not None and tuple(
                    state_dict[key].shape) != tuple(value.shape):
                raise ValueError(
                    f'checkpoint tensor {key!r} has shape '
                    f'{tuple(state_dict[key].shape)} but the dynamic layer '
                    f'expects {tuple(value.shape)} (was the checkpoint made '
                    f'for a different base config?)')
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        fresh = [
            prefix + name for name in own
            if name.startswith(DYNAMIC_PREFIXES) and prefix +
            name not in state_dict
        ]
        base_loaded = any(prefix + name in state_dict for name in own
                          if not name.startswith(DYNAMIC_PREFIXES))
        if fresh and base_loaded:
            print_log(
                f'VA-RED2: {prefix.rstrip(".") or "layer"}: base weights '
                f'loaded; {len(fresh)} gate/cheap-op tensors keep their '
                'initialisation',
                logger='current',
                level=10)
