# Copyright (c) varedd_mm contributors. All rights reserved.
"""Parsing and validation of ``dynamic_cfg``, the one dict that turns a conv
into a VA-RED² dynamic conv.

Every key, its default and its allowed values are listed in
:data:`DYNAMIC_CFG_DEFAULTS` / :data:`GATE_CFG_DEFAULTS`. Bad values raise a
``ValueError`` that names the key and the allowed values; nothing is
clamped.
"""
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple

#: Top-level keys of ``dynamic_cfg`` and their defaults.
DYNAMIC_CFG_DEFAULTS = dict(
    # K: number of choices along each reduced dimension. 2 -> {1, 1/2},
    # 3 -> {1, 1/2, 1/4} (temporal stride x1/x2/x4, channels r=1/1/2/1/4).
    search_space=2,
    # Dimensions the layer may reduce: a subset of ('temporal', 'channel').
    dims=('temporal', 'channel'),
    # Temporal cheap op phi_t: 'interp' = linear interpolation between
    # computed frames followed by a learnable depthwise 3-tap temporal
    # filter initialised to identity, evaluated at the rebuilt frames only.
    temporal_op='interp',
    # (2+1)D convs only: how the temporal conv reads the sub-sampled frames
    # at a temporal choice R > 1 (the spatial conv runs on every R-th frame).
    # 'subsample': its taps apply to the sub-sampled sequence as they are,
    # so they span R frames (a motion looks R times faster to them).
    # 'interp' (3-tap temporal convs only): its taps apply to the spatial
    # output with the skipped frames linearly interpolated from the
    # computed ones (held after the last), which folds into a kernel on the
    # sub-sampled sequence (the conv's cost plus two end frames) and keeps
    # the taps' time scale. Plain convs ignore it (their temporal choice is
    # exact on the computed frames).
    temporal_taps='subsample',
    # Spatial cheap op phi_s: 'ghost' = GhostNet-style depthwise 3x3 conv
    # with channel multiplier 1/r - 1, initialised to copy its source channel.
    channel_op='ghost',
    # The soft-modulation gate (see GATE_CFG_DEFAULTS).
    gate=None,
)

#: Keys of ``dynamic_cfg['gate']``.
GATE_CFG_DEFAULTS = dict(
    # hidden width = clip(in_channels // reduction, min_hidden, max_hidden)
    reduction=16,
    min_hidden=16,
    max_hidden=64,
    # softmax temperature of the training-time policy
    temperature=1.0,
    # add Gumbel noise to the logits at training time
    gumbel=False,
    # False: the training output is the expectation over choices (paper).
    # True: straight-through: the forward value is the arg-max choice's
    # output (what inference computes, so BN and the loss see inference
    # behaviour) and gradients flow through the soft probabilities.
    straight_through=False,
    # divide the task-loss gradient reaching the policy by the number of
    # output elements per clip: it is a sum over the whole output map, so
    # without this its scale grows with the layer size (a stem gate gets
    # ~100x the gradient of a last-stage gate) and plain SGD at fine-tuning
    # learning rates saturates the gates in one step
    normalize_grad=True,
    # initial logit bias of choice 0 (compute everything) over the others
    init_bias_full=0.0,
    # spatial stride of the global-average pooling: the mean over every
    # pool_stride-th pixel in H and W is the same statistic at 1/stride**2
    # of the cost (pooling dominates the gate cost of 1x1 and 3x1x1 convs)
    pool_stride=2,
    # what the gate reads: 'mean' = the global average of the layer input
    # (the paper); 'mean_tdiff' = that plus the global average of the
    # absolute differences between consecutive frames of the input, a
    # cheap statistic of how much the clip changes in time (a texture that
    # stays put and the same texture panning have the same mean, not the
    # same differences). Clips only (no time axis: 'mean').
    input='mean',
    # standardise the pooled statistics the gate reads per feature over the
    # clips of the batch (running statistics at inference; gate.py's
    # PooledStandardize, not a BN layer): pooled activations vary little
    # from clip to clip next to their mean, so an unnormalised gate's
    # logits hardly depend on its input and the policy is one pattern for
    # every clip (docs/policy.md)
    norm_input=False,
)

ALLOWED_GATE_INPUTS = ('mean', 'mean_tdiff')
ALLOWED_DIMS = ('temporal', 'channel')
ALLOWED_SEARCH_SPACES = (2, 3)
ALLOWED_TEMPORAL_OPS = ('interp', )
ALLOWED_TEMPORAL_TAPS = ('subsample', 'interp')
ALLOWED_CHANNEL_OPS = ('ghost', )


@dataclass(frozen=True)
class GateSpec:
    reduction: int
    min_hidden: int
    max_hidden: int
    temperature: float
    gumbel: bool
    straight_through: bool
    normalize_grad: bool
    init_bias_full: float
    pool_stride: int
    input: str = 'mean'
    norm_input: bool = False

    def hidden(self, in_channels: int) -> int:
        """Hidden width of the gate MLP for ``in_channels`` inputs."""
        return max(self.min_hidden,
                   min(self.max_hidden, in_channels // self.reduction))


@dataclass(frozen=True)
class DynamicSpec:
    """Validated ``dynamic_cfg`` of one layer."""
    search_space: int
    dims: Tuple[str, ...]
    temporal_op: str
    channel_op: str
    gate: GateSpec
    temporal_taps: str = 'subsample'

    @property
    def num_temporal(self) -> int:
        """Number of temporal choices (1 when time is not reduced)."""
        return self.search_space if 'temporal' in self.dims else 1

    @property
    def num_channel(self) -> int:
        """Number of channel choices (1 when channels are not reduced)."""
        return self.search_space if 'channel' in self.dims else 1


def _check_keys(cfg: Mapping, allowed: Mapping, name: str) -> None:
    unknown = sorted(set(cfg) - set(allowed))
    if unknown:
        raise ValueError(f'{name} got unknown key(s) {unknown}; allowed keys '
                         f'are {sorted(allowed)}')


def parse_options(
    cfg: Mapping,
    defaults: Mapping,
    owner: str,
    positive: Tuple[str, ...] = (),
    non_negative: Tuple[str, ...] = ()
) -> dict:
    """``cfg`` merged over ``defaults``, for an options dict of a model
    (``inplace_distill``, ``policy_rank``, ``full_choice_loss``): a
    ``ValueError`` naming
    ``owner`` unless ``cfg`` is a dict of known keys whose ``positive``
    keys are numbers > 0 and whose ``non_negative`` keys numbers >= 0."""
    if not isinstance(cfg, Mapping):
        raise ValueError(f'{owner} must be a dict with keys '
                         f'{sorted(defaults)} or None, got {cfg!r}')
    unknown = sorted(set(cfg) - set(defaults))
    if unknown:
        raise ValueError(f'{owner}: unknown keys {unknown}; allowed: '
                         f'{sorted(defaults)}')
    parsed = dict(defaults, **cfg)
    for keys, bound, ok in ((positive, '> 0', lambda v: v > 0),
                            (non_negative, '>= 0', lambda v: v >= 0)):
        for key in keys:
            value = parsed[key]
            if isinstance(
                    value,
                    bool) or not isinstance(value,
                                            (int, float)) or not ok(value):
                raise ValueError(f'{owner}.{key} must be a number {bound}, '
                                 f'got {value!r}')
    return parsed


def normalize_dims(dims) -> Tuple[str, ...]:
    """``dims`` as a tuple in canonical order; a ``ValueError`` naming the
    key unless it is a non-empty subset of :data:`ALLOWED_DIMS`."""
    if isinstance(dims, str):
        dims = (dims, )
    try:
        dims = tuple(dims)
    except TypeError:
        dims = (dims, )
    bad = [d for d in dims if d not in ALLOWED_DIMS]
    if bad or not dims or len(set(dims)) != len(dims):
        raise ValueError(f'dynamic_cfg.dims must be a non-empty subset of '
                         f'{ALLOWED_DIMS} without repeats, got {dims!r}')
    return tuple(d for d in ALLOWED_DIMS if d in dims)


def halves(n: int, search_space: int) -> bool:
    """Whether ``n`` halves ``search_space - 1`` times into whole numbers."""
    div = 2**(search_space - 1)
    return n >= div and n % div == 0


def channels_reducible(out_channels: int, groups: int,
                       search_space: int) -> bool:
    """Whether a conv can take every channel choice of ``search_space``:
    ``out_channels`` (and, for grouped convs, ``groups``: whole groups are
    reduced) must halve ``search_space - 1`` times."""
    return halves(out_channels, search_space) and (groups == 1 or halves(
        groups, search_space))


def parse_dynamic_cfg(dynamic_cfg: Optional[Mapping],
                      *,
                      has_time: bool,
                      out_channels: Optional[int] = None,
                      groups: int = 1,
                      layer: str = 'dynamic conv') -> DynamicSpec:
    """Validate ``dynamic_cfg`` for one layer and fill in the defaults.

    Args:
        dynamic_cfg (Mapping, optional): The user's config; None means all
            defaults.
        has_time (bool): Whether the layer has a time axis (3D convs).
            2D convs only allow ``dims=('channel',)``.
        out_channels (int, optional): Output channels of the layer; with
            the channel dimension they must halve ``search_space - 1``
            times. None validates the config alone (what a backbone does
            before it places dynamic convs).
        groups (int): Conv groups. Grouped convs reduce whole groups, so
            ``groups`` must halve ``search_space - 1`` times too.
        layer (str): Name used in error messages.

    Returns:
        DynamicSpec: The validated config.
    """
    cfg = dict(dynamic_cfg or {})
    _check_keys(cfg, DYNAMIC_CFG_DEFAULTS, 'dynamic_cfg')
    full = dict(DYNAMIC_CFG_DEFAULTS)
    full.update(cfg)

    k = full['search_space']
    if isinstance(k, bool) or k not in ALLOWED_SEARCH_SPACES:
        raise ValueError(f'dynamic_cfg.search_space must be one of '
                         f'{ALLOWED_SEARCH_SPACES}, got {k!r}')

    dims = normalize_dims(full['dims'])
    if not has_time and 'temporal' in dims:
        raise ValueError(f"dynamic_cfg.dims of a 2D {layer} may only hold "
                         f"'channel' (there is no time axis), got {dims!r}")

    if full['temporal_op'] not in ALLOWED_TEMPORAL_OPS:
        raise ValueError(
            f'dynamic_cfg.temporal_op must be one of '
            f"{ALLOWED_TEMPORAL_OPS}, got {full['temporal_op']!r}")
    if full['temporal_taps'] not in ALLOWED_TEMPORAL_TAPS:
        raise ValueError(
            f'dynamic_cfg.temporal_taps must be one of '
            f"{ALLOWED_TEMPORAL_TAPS}, got {full['temporal_taps']!r}")
    if full['channel_op'] not in ALLOWED_CHANNEL_OPS:
        raise ValueError(f'dynamic_cfg.channel_op must be one of '
                         f"{ALLOWED_CHANNEL_OPS}, got {full['channel_op']!r}")

    if 'channel' in dims and out_channels is not None:
        div = 2**(k - 1)
        if not halves(out_channels, k):
            raise ValueError(
                f'{layer}: out_channels={out_channels} cannot be halved '
                f'{k - 1} time(s) as dynamic_cfg.search_space={k} with '
                f"dims containing 'channel' requires; use out_channels "
                f"divisible by {div} or drop 'channel' from dims")
        if groups > 1 and not halves(groups, k):
            raise ValueError(
                f'{layer}: groups={groups} cannot be halved {k - 1} time(s); '
                f'grouped convs reduce whole groups, so groups must be '
                f"divisible by {div}, or drop 'channel' from dims")

    gate_cfg = dict(full['gate'] or {})
    _check_keys(gate_cfg, GATE_CFG_DEFAULTS, 'dynamic_cfg.gate')
    g = dict(GATE_CFG_DEFAULTS)
    g.update(gate_cfg)
    for key in ('reduction', 'min_hidden', 'max_hidden', 'pool_stride'):
        if isinstance(g[key],
                      bool) or not isinstance(g[key], int) or g[key] < 1:
            raise ValueError(f'dynamic_cfg.gate.{key} must be a positive '
                             f'int, got {g[key]!r}')
    if g['min_hidden'] > g['max_hidden']:
        raise ValueError('dynamic_cfg.gate.min_hidden must be <= max_hidden, '
                         f"got {g['min_hidden']} > {g['max_hidden']}")
    if not float(g['temperature']) > 0:
        raise ValueError('dynamic_cfg.gate.temperature must be > 0, got '
                         f"{g['temperature']!r}")
    if not isinstance(g['norm_input'], bool):
        raise ValueError('dynamic_cfg.gate.norm_input must be a bool, got '
                         f"{g['norm_input']!r}")
    if g['input'] not in ALLOWED_GATE_INPUTS:
        raise ValueError(f'dynamic_cfg.gate.input must be one of '
                         f"{ALLOWED_GATE_INPUTS}, got {g['input']!r}")
    if g['input'] == 'mean_tdiff' and not has_time:
        raise ValueError(
            f"{layer}: dynamic_cfg.gate.input='mean_tdiff' needs a time "
            "axis; this layer has none (use input='mean')")
    gate = GateSpec(
        reduction=g['reduction'],
        min_hidden=g['min_hidden'],
        max_hidden=g['max_hidden'],
        temperature=float(g['temperature']),
        gumbel=bool(g['gumbel']),
        straight_through=bool(g['straight_through']),
        normalize_grad=bool(g['normalize_grad']),
        init_bias_full=float(g['init_bias_full']),
        pool_stride=g['pool_stride'],
        input=g['input'],
        norm_input=bool(g['norm_input']))
    return DynamicSpec(
        search_space=k,
        dims=dims,
        temporal_op=full['temporal_op'],
        channel_op=full['channel_op'],
        gate=gate,
        temporal_taps=full['temporal_taps'])
