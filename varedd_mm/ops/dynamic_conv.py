# Copyright (c) varedd_mm contributors. All rights reserved.
"""VA-RED² dynamic convolutions: the per-clip policy machinery and the plain
2D/3D convs. The (2+1)D conv lives in ``conv2plus1d.py`` and reuses
:class:`DynamicConvMixin`.

How one forward works (see docs/engine.md for the design and measurements):

* The gate reads the layer input and gives per-clip logits for the temporal
  choice ``i`` (stride multiplier ``R = 2**i``) and the channel choice ``j``
  (compute the first ``C_out / 2**j`` filters).
* Training: the output is the expectation over all choices, weighted by the
  gate's soft probabilities (or, with ``gate.straight_through``, the arg-max
  choice's output with the gradient of the expectation). All choices share
  the conv weights; for a plain conv the reduced outputs are exact slices
  of the full output (the strided conv gives the full conv's frames
  ``0, R, 2R, ...``; the first filters give the first channels), so the
  full conv runs once and each choice only adds its cheap rebuild.
* Inference: each clip takes its arg-max choice; clips are grouped by
  choice and each group runs only the reduced conv of its choice plus the
  cheap rebuild. Choice (0, 0) runs exactly the base conv.
* Every forward records per-clip realised MACs (``last_macs``), the
  differentiable expected MACs (``last_expected_macs``), the full cost
  (``full_macs``) and the choices taken (``last_choice``), which the
  efficiency loss and :func:`varedd_mm.clip_gflops` read.

Normalisation (the BN pitfall of the method spec): the base model's BN
stays where it is, after the rebuilt output, shared by all choices. That
keeps base checkpoints loadable and choice (0, 0) exact, and it is sound
because every reduced choice *equals* the full output on the frames and
channels it computes; only the cheaply rebuilt part differs. What a shared
BN cannot see at training time is the hard per-clip choice of inference (it
sees the soft mixture), so :func:`varedd_mm.recalibrate_bn` re-estimates
the running statistics under the inference-time (hard) policy, as
slimmable networks do; the test ``test_bn_recalibration`` shows the eval
outputs of a briefly trained layer match its train-mode behaviour under the
same hard choices after recalibration.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log

from .cheap_ops import ChannelCheapOp, TemporalCheapOp, num_computed_frames
from .config import DynamicSpec, parse_dynamic_cfg
from .gate import SoftModulationGate

Choice = Tuple[int, int]


def conv_out_size(size: int, kernel: int, stride: int, padding: int,
                  dilation: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def reduced_conv(x: torch.Tensor, weight: torch.Tensor,
                 bias: Optional[torch.Tensor], stride, padding, dilation,
                 groups: int) -> torch.Tensor:
    """``F.conv2d``/``F.conv3d`` for the reduced choices.

    At inference on CPU it calls oneDNN directly: aten's dispatch sends
    batch-1 inputs with ``N*C*T*H <= 20480`` to its native ``slow_conv3d``
    (a heuristic "native is faster" that is 3x slower here, measured in
    docs/engine.md), and the reduced choices, with fewer channels and
    frames, fall under that limit far more often than the base convs.
    Training, tracing (FLOPs counters) and other devices use ``F.conv*d``.
    """
    dims = x.dim() - 2
    if (x.device.type == 'cpu' and x.dtype == torch.float32
            and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled and not torch.jit.is_tracing()
            and not (torch.is_grad_enabled() and
                     (x.requires_grad or weight.requires_grad))):

        def as_list(v):
            return list(v) if isinstance(v, (tuple, list)) else [v] * dims

        return torch.ops.aten.mkldnn_convolution(x.contiguous(),
                                                 weight.contiguous(), bias,
                                                 as_list(padding),
                                                 as_list(stride),
                                                 as_list(dilation), groups)
    conv = F.conv3d if dims == 3 else F.conv2d
    return conv(x, weight, bias, stride, padding, dilation, groups)


def _check_padding(layer: str, padding, padding_mode: str) -> None:
    """Reduced choices call ``F.conv*d`` with integer zero padding."""
    if padding_mode != 'zeros' or isinstance(padding, str):
        raise ValueError(
            f'{layer} supports padding_mode="zeros" with integer padding '
            f'only, got padding_mode={padding_mode!r}, padding={padding!r}')


class DynamicConvMixin:
    """Policy machinery shared by every VA-RED² dynamic conv.

    A subclass calls :meth:`_init_dynamic` in ``__init__`` and implements:

    * ``_compute(x, i, j)``: the inference path of choice ``(i, j)`` for a
      group of clips (reduced conv + cheap rebuild).
    * ``_compute_all(x)``: outputs of every choice for the training-time
      expectation, as a dict ``{(i, j): tensor}``.
    * ``_choice_macs(shape)``: MACs per clip of each choice (gate excluded)
      for an input of ``shape``, as a dict ``{(i, j): int}``.
    * ``_input_dim``: 4 (2D convs) or 5 (3D convs).
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
        self.reset_records()

    # ------------------------------------------------------------------
    # records read by clip_gflops / EfficiencyLoss / analysis tools
    def reset_records(self) -> None:
        """Forget what the last forward recorded."""
        self.last_choice: Optional[torch.Tensor] = None
        self.last_macs: Optional[torch.Tensor] = None
        self.last_expected_macs: Optional[torch.Tensor] = None
        self.full_macs: Optional[int] = None
        self.last_probs: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def macs_table(self, shape: Sequence[int]) -> Dict[Choice, int]:
        """MACs per clip of every choice for an input of ``shape``."""
        key = tuple(shape[1:])
        if key not in self._macs_cache:
            self._macs_cache[key] = self._choice_macs(tuple(shape))
        return self._macs_cache[key]

    def gate_macs(self, shape: Sequence[int]) -> int:
        """MACs per clip of the gate for an input of ``shape``."""
        return self.gate.macs(shape)

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

    def _rebuild(self, y: torch.Tensor, i: int, j: int,
                 t_out: Optional[int]) -> torch.Tensor:
        """Cheap rebuild: channels first (on the computed frames), then
        time (on all channels)."""
        blocks = [y]
        if j > 0:
            blocks += self.channel_ops[j - 1].blocks(y)
        if i > 0:
            # the temporal op writes the channel blocks straight into the
            # full-rate output: no concatenated intermediate
            return self.temporal_ops[i - 1](blocks, t_out)
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the layer under its current policy.

        Args:
            x (torch.Tensor): ``(N, C_in, T, H, W)`` (3D) or
                ``(N, C_in, H, W)`` (2D).

        Returns:
            torch.Tensor: Same shape as the base conv's output.
        """
        self._check_input(x)
        n = x.shape[0]
        table = self.macs_table(x.shape)
        self.full_macs = table[(0, 0)]
        dev = x.device

        if self.forced_choice is not None:
            i, j = self.forced_choice
            out = self._compute(x, i, j)
            cost = torch.full((n, ), float(table[(i, j)]), dtype=torch.float64)
            self.last_choice = torch.tensor([[i, j]]).expand(n, 2)
            self.last_macs = cost
            self.last_expected_macs = cost.to(device=dev, dtype=torch.float32)
            self.last_probs = None
            return out

        lt, lc = self.gate.logits(x)
        gate_cost = self.gate_macs(x.shape)
        if self.training:
            # the recorded choice is the arg-max of the probabilities the
            # straight-through forward uses (with Gumbel noise: the sample)
            pt, pc = self.gate.probs(lt), self.gate.probs(lc)
            choice = torch.stack([pt.argmax(dim=1), pc.argmax(dim=1)], dim=1)
        else:
            choice = torch.stack([lt.argmax(dim=1), lc.argmax(dim=1)], dim=1)
        self.last_choice = choice.detach().cpu()
        costs = torch.tensor(
            [[float(table[(i, j)]) for j in range(lc.shape[1])]
             for i in range(lt.shape[1])],
            dtype=torch.float64)
        self.last_macs = costs[self.last_choice[:, 0],
                               self.last_choice[:, 1]] + gate_cost

        if self.training:
            self.last_probs = (pt, pc)
            joint = pt.unsqueeze(2) * pc.unsqueeze(1)  # (N, K_t, K_c)
            self.last_expected_macs = (joint * costs.to(
                device=dev, dtype=joint.dtype)).flatten(1).sum(
                    dim=1) + gate_cost
            outs = self._compute_all(x)
            numel = outs[(0, 0)][0].numel()
            mix = (
                self.gate.mixing_weights(pt, numel).unsqueeze(2) *
                self.gate.mixing_weights(pc, numel).unsqueeze(1))
            bshape = (n, ) + (1, ) * (x.dim() - 1)
            out = None
            for (i, j), y in outs.items():
                term = y * mix[:, i, j].view(bshape)
                out = term if out is None else out + term
            return out

        self.last_probs = (F.softmax(lt, dim=1), F.softmax(lc, dim=1))
        self.last_expected_macs = self.last_macs.to(
            device=dev, dtype=torch.float32)
        return self._compute_grouped(x, choice, lc.shape[1])

    def _compute_grouped(self, x: torch.Tensor, choice: torch.Tensor,
                         num_channel: int) -> torch.Tensor:
        """Run each group of clips that share a choice once."""
        key = choice[:, 0] * num_channel + choice[:, 1]
        groups = torch.unique(key).tolist()
        if len(groups) == 1:
            k = groups[0]
            return self._compute(x, k // num_channel, k % num_channel)
        out = None
        for k in groups:
            idx = (key == k).nonzero().squeeze(1)
            y = self._compute(
                x.index_select(0, idx), k // num_channel, k % num_channel)
            if out is None:
                out = y.new_empty((x.shape[0], ) + y.shape[1:])
            out.index_copy_(0, idx, y)
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
            prefix + name for name, _ in self.named_parameters()
            if name.startswith(('gate.', 'temporal_ops.',
                                'channel_ops.')) and prefix +
            name not in state_dict
        ]
        if fresh and (prefix + 'weight') in state_dict:
            print_log(
                f'VA-RED2: {prefix.rstrip(".") or "layer"}: base weights '
                f'loaded; {len(fresh)} gate/cheap-op tensors keep their '
                'initialisation',
                logger='current',
                level=10)


class VARED2Conv3d(DynamicConvMixin, nn.Conv3d):
    """Dynamic ``nn.Conv3d`` (same signature, plus ``dynamic_cfg``).

    Keeps ``weight``/``bias`` of ``nn.Conv3d``, so base checkpoints, mmcv's
    ``ConvModule`` and mmaction's init code treat it as the base conv.
    Temporal choice ``i`` runs the conv with temporal stride ``2**i * S``;
    channel choice ``j`` runs the first ``C_out / 2**j`` filters (for grouped
    convs: the first ``groups / 2**j`` groups, reading only their own input
    channels).

    Args:
        dynamic_cfg (dict, optional): See :mod:`varedd_mm.ops.config`.
    """

    _input_dim = 5

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size,
                 stride=1,
                 padding=0,
                 dilation=1,
                 groups: int = 1,
                 bias: bool = True,
                 padding_mode: str = 'zeros',
                 dynamic_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        _check_padding(type(self).__name__, padding, padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, padding_mode,
                         **kwargs)
        spec = parse_dynamic_cfg(
            dynamic_cfg,
            has_time=True,
            out_channels=out_channels,
            groups=groups,
            layer=type(self).__name__)
        self._init_dynamic(spec, in_channels, out_channels)

    # ------------------------------------------------------------------
    def _out_size(self, shape):
        return tuple(
            conv_out_size(s, k, st, p, d)
            for s, k, st, p, d in zip(shape[2:], self.kernel_size, self.stride,
                                      self.padding, self.dilation))

    def _choice_macs(self, shape) -> Dict[Choice, int]:
        t_out, h, w = self._out_size(shape)
        kt, kh, kw = self.kernel_size
        cin_g = self.in_channels // self.groups
        table = {}
        for i, j in self.choices:
            t_c = num_computed_frames(t_out, 2**i)
            c = self.out_channels >> j
            macs = t_c * h * w * c * cin_g * kt * kh * kw
            if j > 0:
                macs += self.channel_ops[j - 1].macs(t_c * h * w)
            if i > 0:
                macs += self.temporal_ops[i - 1].macs(self.out_channels *
                                                      (t_out - t_c) * h * w)
            table[(i, j)] = macs
        return table

    def _slice(self, j: int):
        c = self.out_channels >> j
        weight = self.weight[:c] if j else self.weight
        bias = None if self.bias is None else (
            self.bias[:c] if j else self.bias)
        return weight, bias

    def _compute(self, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
        if i == 0 and j == 0:
            return self._conv_forward(x, self.weight, self.bias)
        weight, bias = self._slice(j)
        groups = self.groups
        if groups > 1 and j > 0:
            groups >>= j
            x = x[:, :self.in_channels >> j].contiguous()
        t_out = self._out_size(x.shape)[0]
        # A temporal stride R * S gives exactly the full conv's frames
        # 0, R, 2R, ...; oneDNN turns the stride into proportional time on
        # CPU (measured in docs/engine.md), so no gather trick is needed.
        stride = (self.stride[0] * 2**i, ) + tuple(self.stride[1:])
        y = reduced_conv(x, weight, bias, stride, self.padding, self.dilation,
                         groups)
        return self._rebuild(y, i, j, t_out)

    def _compute_all(self, x: torch.Tensor) -> Dict[Choice, torch.Tensor]:
        full = self._conv_forward(x, self.weight, self.bias)
        t_out = full.shape[2]
        outs = {}
        for i, j in self.choices:
            if i == 0 and j == 0:
                outs[(i, j)] = full
                continue
            y = full[:, :self.out_channels >> j, ::2**i]
            outs[(i, j)] = self._rebuild(y, i, j, t_out)
        return outs


class VARED2Conv2d(DynamicConvMixin, nn.Conv2d):
    """Dynamic ``nn.Conv2d``: channel choices only (no time axis).

    For segmentation backbones (mmseg's ResNetV1c through ``conv_cfg``).
    """

    _input_dim = 4

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size,
                 stride=1,
                 padding=0,
                 dilation=1,
                 groups: int = 1,
                 bias: bool = True,
                 padding_mode: str = 'zeros',
                 dynamic_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        _check_padding(type(self).__name__, padding, padding_mode)
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, bias, padding_mode,
                         **kwargs)
        cfg = dict(dynamic_cfg or {})
        cfg.setdefault('dims', ('channel', ))
        spec = parse_dynamic_cfg(
            cfg,
            has_time=False,
            out_channels=out_channels,
            groups=groups,
            layer=type(self).__name__)
        self._init_dynamic(spec, in_channels, out_channels)

    def _choice_macs(self, shape) -> Dict[Choice, int]:
        h, w = (conv_out_size(s, k, st, p, d)
                for s, k, st, p, d in zip(shape[2:], self.kernel_size, self.
                                          stride, self.padding, self.dilation))
        kh, kw = self.kernel_size
        cin_g = self.in_channels // self.groups
        table = {}
        for i, j in self.choices:
            c = self.out_channels >> j
            macs = h * w * c * cin_g * kh * kw
            if j > 0:
                macs += self.channel_ops[j - 1].macs(h * w)
            table[(i, j)] = macs
        return table

    def _compute(self, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
        if j == 0:
            return self._conv_forward(x, self.weight, self.bias)
        c = self.out_channels >> j
        bias = None if self.bias is None else self.bias[:c]
        groups = self.groups
        if groups > 1:
            groups >>= j
            x = x[:, :self.in_channels >> j].contiguous()
        y = reduced_conv(x, self.weight[:c], bias, self.stride, self.padding,
                         self.dilation, groups)
        return self._rebuild(y, 0, j, None)

    def _compute_all(self, x: torch.Tensor) -> Dict[Choice, torch.Tensor]:
        full = self._conv_forward(x, self.weight, self.bias)
        outs = {}
        for i, j in self.choices:
            outs[(i, j)] = full if j == 0 else self._rebuild(
                full[:, :self.out_channels >> j], 0, j, None)
        return outs
