# Copyright (c) varedd_mm contributors. All rights reserved.
"""Inference-time folding of BatchNorm into the conv before it.

:func:`fuse_conv_bn` walks a model in eval mode and folds every BN that
directly follows a conv (in registration order, as OpenMMLab's modules
register them: ``ConvModule``'s conv then norm, ResNet blocks' ``conv1``
then ``norm1``, ``Sequential`` stems) into that conv, replacing the BN by
``nn.Identity``:

* a plain ``nn.Conv1d/2d/3d`` gets the folded weight and bias
  (``w * s``, ``(b - mean) * s + beta`` with ``s = gamma / sqrt(var +
  eps)``) and becomes a :class:`FusedConv2d` / :class:`FusedConv3d`, which
  runs through the same backend dispatch as the reduced convs
  (:func:`~varedd_mm.ops.backend.reduced_conv`): the "same execution" of a
  base model that a VA-RED² model is compared with. A plain 2D / 3D conv
  with no BN after it (X3D's stem conv, squeeze-excitation convs) becomes
  one too, with its own weights, so that every conv of a fused model runs
  through that dispatch (a conv left to ``F.conv3d`` returned an NCDHW
  output for a channels-last input in X3D-M's stem, and the whole base
  then ran in the slower layout);
* a VA-RED² dynamic conv keeps its weights (every choice shares them) and
  takes the BN's affine as a post-op: each choice's reduced conv runs with
  the folded weights where its output needs no rebuild from raw values, the
  ghost op gets the generated channels' affine folded into its depthwise
  filters (exact at the zero-padded borders, where folding the BN into the
  conv before the ghost op would not be), and the temporal rebuild carries
  the BN's shift through its interpolation. Every choice gives the BN'd
  output of the unfused model (to float rounding); choice (0, 0) runs
  exactly what the fused base model runs, bit for bit;
* the inner ``bn_s`` of a (2+1)D conv (``conv_s``, ``bn_s``, ``conv_t``:
  mmaction's ``Conv2plus1d`` and ``VARED2Conv2plus1d``) is folded into
  ``conv_s``, and a BN after such a module into its ``conv_t``;
* a ReLU that runs only right after such a BN (mmcv ``ConvModule``'s
  activation in the default order, a (2+1)D conv's inner ReLU) is applied
  by the conv before it: a oneDNN post-op of the conv (base convs, and
  dynamic convs where nothing is rebuilt), or as the dynamic conv's
  rebuild writes its output (``native.py``; on the torch-op path an
  in-place ReLU after the rebuild). A block's ReLU after its residual sum
  (mmseg's and mmdet's ResNet blocks register it right after their second
  BN) is not such a ReLU. This assumes the ``ConvModule`` runs through its
  own ``forward`` with its activation on: a module that calls a
  ConvModule's ``norm`` / ``activate`` by hand (mmdet's ``TOODHead``), or
  ``forward(x, activate=False)``, is not fused correctly (BN folding
  already assumed the same);
* a residual block's sum and ReLU (mmaction's ``BasicBlock3d``,
  ``Bottleneck3d`` and ``BlockX3D``: I3D, SlowOnly / TPN, R(2+1)D, X3D;
  mmseg's ResNet ``BasicBlock``: the ResNet-18 of PSPNet) are applied by
  the block's last conv as it writes its output: the block computes its
  shortcut first and hands it to that conv, which returns
  ``relu(conv + shortcut)`` (for a base conv and a dynamic conv at a
  choice without rebuild: oneDNN's binary post-op channels-last, one
  in-place pass after the conv otherwise, see
  :func:`~varedd_mm.ops.backend.reduced_conv`; the compiled rebuild of a
  reduced choice reads the shortcut as it writes each element). Only
  blocks of exactly these classes whose last ``ConvModule`` (or conv) has
  no activation of its own (and whose BN was folded) and whose ReLU is an
  ``nn.ReLU`` are changed (their class becomes a subclass with that
  forward, ``FusedBottleneck3d`` ...); any other block keeps its forward.
  Forward hooks on such a block's last ``ConvModule`` and on its ReLU
  module no longer run (the conv inside is still called as a module);
  ``with_cp`` is not used (inference). Inside ``BlockX3D`` the
  squeeze-excitation and the swish between its convs then run in place on
  the depthwise conv's output (the SE scale multiplied into it, the swish
  as ``F.silu``, equal to mmcv's ``x * sigmoid(x)`` to float rounding):
  two read-and-write passes over the block's widest activation instead of
  three ops that read it four times and write three new tensors. Only
  where no one else can hold that tensor: no hook on the conv that made
  it, on the SE or swish module or inside them, no global module hook
  (see :func:`_residual_forward`).

* every ``nn.MaxPool2d`` / ``nn.MaxPool3d`` pools contiguous (NCDHW /
  NCHW) CPU inputs as a maximum over strided views
  (:mod:`varedd_mm.ops.pool`; the same values, several times faster than
  torch's scalar kernel for that layout).

What it removes is a full-resolution memory pass per BN; on memory-bound
CPU inference that is a large share of a VA-RED² model's time, because the
reduced convs shrink the compute but not the output that BN reads and
writes (docs/engine.md has the measurements). The fused model is for
inference only: its BNs are gone, a fused dynamic conv refuses training.
"""
import importlib
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules import module as module_py
from torch.nn.modules.batchnorm import _BatchNorm

from .backend import reduced_conv
from .pool import use_inference_max_pools


def bn_affine(bn: _BatchNorm) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` of an eval-mode BN: ``bn(x) = x * scale +
    shift`` per channel."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f'{type(bn).__name__} without running statistics '
                         '(track_running_stats=False) cannot be folded')
    inv = torch.rsqrt(bn.running_var + bn.eps)
    scale = inv if bn.weight is None else bn.weight * inv
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale.detach(), shift.detach()


def fold_affine(weight: torch.Tensor, bias: Optional[torch.Tensor],
                scale: torch.Tensor,
                shift: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``affine(conv(x))`` as one conv (the one formula
    base and dynamic convs share, so their (0, 0) outputs agree bit for
    bit)."""
    view = (-1, ) + (1, ) * (weight.dim() - 1)
    w = weight.detach() * scale.view(view)
    b = shift if bias is None else bias.detach() * scale + shift
    return w.contiguous(), b.contiguous()


def reads_shapes_only(hook):
    """Mark a module hook that reads only the shapes of the tensors it is
    given and keeps none of them (the FLOPs counter's): a fused block's
    in-place steps (:func:`_residual_forward`) may still write tensors such
    a hook saw."""
    hook.reads_shapes_only = True
    return hook


def _carry_shape_only_hooks(old: nn.Module, new: nn.Module) -> None:
    """Give ``new``, which replaces ``old``, the forward hooks of ``old``
    marked :func:`reads_shapes_only`: the FLOPs counter's (wherever its
    record is attached, on the model fused or on a model it is part of),
    which then counts the fused conv as it counted the conv. Other hooks on
    a replaced conv (or on a folded BN or ReLU) do not run in the fused
    model."""
    for hook in old._forward_hooks.values():
        if getattr(hook, 'reads_shapes_only', False):
            new.register_forward_hook(hook)


class _FusedConvMixin:
    """A conv that runs through :func:`reduced_conv` (oneDNN directly at
    CPU inference, ``F.conv*d`` elsewhere), with the ReLU that followed its
    BN as a post-op when ``fused_relu`` is set. ``forward(x, residual)``
    (the last conv of a fused residual block, :func:`fuse_conv_bn`)
    returns ``relu(conv(x) + residual)`` with the conv's output write
    (:func:`reduced_conv`)."""

    fused_relu = False

    def forward(self, x, residual=None):
        if residual is None:
            return super().forward(x)
        if self.fused_relu:
            raise RuntimeError(f'{type(self).__name__}: a residual cannot '
                               'follow the ReLU fused after its BN')
        if self.padding_mode != 'zeros' or isinstance(self.padding, str):
            y = super().forward(x)
            return y.add_(residual).relu_()
        return reduced_conv(x, self.weight, self.bias, self.stride,
                            self.padding, self.dilation, self.groups, True,
                            residual)

    def _conv_forward(self, x, weight, bias):
        if self.padding_mode != 'zeros' or isinstance(self.padding, str):
            y = super()._conv_forward(x, weight, bias)
            return y.relu_() if self.fused_relu else y
        return reduced_conv(x, weight, bias, self.stride, self.padding,
                            self.dilation, self.groups, self.fused_relu)


class FusedConv2d(_FusedConvMixin, nn.Conv2d):
    """``nn.Conv2d`` with a BN folded in (made by :func:`fuse_conv_bn`)."""


class FusedConv3d(_FusedConvMixin, nn.Conv3d):
    """``nn.Conv3d`` with a BN folded in (made by :func:`fuse_conv_bn`)."""


_FUSED_CLASSES = {nn.Conv2d: FusedConv2d, nn.Conv3d: FusedConv3d}

# conv subclasses whose forward is the torch conv's (mmcv's wrappers only
# add empty-tensor handling): they become fused convs too
_PLAIN_CONV_MODULES = ('torch.nn.modules.conv', 'mmcv.cnn.bricks.wrappers')


def _fused_class(conv: nn.Module):
    if type(conv).__module__ not in _PLAIN_CONV_MODULES:
        return None
    for base, fused in _FUSED_CLASSES.items():
        if isinstance(conv, base):
            return fused
    return None


def _fused_plain(conv: nn.Module,
                 bn: Optional[_BatchNorm] = None) -> nn.Module:
    """``conv`` with ``bn`` folded in (``None``: weights as they are) as a
    fused conv, which runs through :func:`reduced_conv`; a conv of another
    class (``Conv1d``, custom convs) is folded in place."""
    if bn is None:
        weight = conv.weight.detach()
        bias = None if conv.bias is None else conv.bias.detach()
    else:
        weight, bias = fold_affine(conv.weight, conv.bias, *bn_affine(bn))
    cls = _fused_class(conv)
    if cls is None:  # Conv1d or a custom conv: fold in place, keep it
        if bn is None:
            return conv
        fused = conv
    else:
        fused = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=bias is not None,
            padding_mode=conv.padding_mode,
            device=conv.weight.device,
            dtype=conv.weight.dtype)
        fused.train(conv.training)
        _carry_shape_only_hooks(conv, fused)
    fused.weight = nn.Parameter(weight, requires_grad=False)
    if bias is not None:
        fused.bias = nn.Parameter(bias, requires_grad=False)
    return fused


def _dispatch_plain_convs(module: nn.Module,
                          memo: Optional[dict] = None) -> None:
    """Every remaining plain conv (no BN after it: X3D's stem conv, the
    squeeze-excitation convs, heads) becomes a fused conv with its own
    weights, so that all convs of a fused model run through the same
    dispatch and keep a channels-last model channels-last."""
    memo = {} if memo is None else memo  # a conv shared by several parents
    for name, child in module._modules.items():
        if child is None or _is_dynamic(child):
            continue  # dynamic convs run their convs through the dispatch
        if _fused_class(child) is not None and not child.transposed:
            if id(child) not in memo:
                memo[id(child)] = (child, _fused_plain(child))
            module._modules[name] = memo[id(child)][1]
        else:
            _dispatch_plain_convs(child, memo)


def _is_dynamic(module: nn.Module) -> bool:
    return hasattr(module, 'fuse_bn') and hasattr(module, 'dynamic_spec')


def _is_2plus1d(module: nn.Module) -> bool:
    return all(
        isinstance(getattr(module, name, None), m)
        for name, m in (('conv_s', nn.Conv3d), ('bn_s', nn.Module),
                        ('conv_t', nn.Conv3d)))


def _relu_only_after_norm(module: nn.Module, name: str) -> bool:
    """Whether child ``name`` of ``module`` is a ReLU that runs exactly
    once, right after the BN registered before it: mmcv's ``ConvModule``
    activation in the default order, and the inner ReLU of a (2+1)D conv.
    (A block's own ReLU, as in ResNet blocks, also runs after the residual
    sum, so it is never folded.)"""
    if type(getattr(module, name)) is not nn.ReLU:
        return False
    if name == 'activate':
        return tuple(getattr(module, 'order', ())) == ('conv', 'norm', 'act')
    return name == 'relu' and _is_2plus1d(module)


def _fuse_children(module: nn.Module) -> None:
    # (parent, child name) of the conv whose output the next child reads
    last = None
    relu_into = None  # the conv that just took a BN (for the ReLU after it)
    for name, child in list(module.named_children()):
        if relu_into is not None and _relu_only_after_norm(module, name):
            if _is_dynamic(relu_into):
                relu_into.fuse_relu()
            else:
                relu_into.fused_relu = True
            setattr(module, name, nn.Identity())
            relu_into = None
            continue
        relu_into = None
        if isinstance(child, _BatchNorm):
            if last is None:
                continue
            owner, conv_name = last
            conv = getattr(owner, conv_name)
            if _is_dynamic(conv):
                conv.fuse_bn(child)
            else:
                setattr(owner, conv_name, _fused_plain(conv, child))
            fused = getattr(owner, conv_name)
            # counted as the BN it replaces (flops.py): a fused model
            # reports the cost of the model it was made from
            fused.folded_bn_affine = child.weight is not None
            if _is_dynamic(fused) or isinstance(fused, _FusedConvMixin):
                relu_into = fused
            setattr(module, name, nn.Identity())
            last = None
        elif _is_dynamic(child):
            child.fuse_bn(None)  # inner BNs ((2+1)D bn_s)
            last = (module, name)
        elif isinstance(child, nn.modules.conv._ConvNd):
            last = None if child.transposed else (module, name)
        else:
            _fuse_children(child)
            last = (child, 'conv_t') if _is_2plus1d(child) else None


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every BN that follows a conv into it, for inference (see the
    module docstring). In place; returns ``model``.

    Raises:
        RuntimeError: if ``model`` is in training mode (BN folding uses the
            running statistics an eval-mode model normalises with).
    """
    if model.training:
        raise RuntimeError('fuse_conv_bn folds the running statistics of '
                           'eval-mode BNs: call model.eval() first')
    with torch.no_grad():
        if _is_dynamic(model):
            model.fuse_bn(None)
        else:
            _fuse_children(model)
            _dispatch_plain_convs(model)
            _fuse_residual_blocks(model)
        use_inference_max_pools(model)
    return model


# --------------------------------------------------------------------------
# residual blocks: the sum and the ReLU in the last conv's output pass
def _residual_plans() -> dict:
    """block class -> (children run in order on the block input, the last
    conv's module, the norm after it): the blocks whose forward is
    ``relu(last(...(x)) + shortcut(x))`` (then, in ResNet3d blocks, the
    optional non-local block). The last module is a ``ConvModule`` (norm
    None: its own) or, in mmseg's ResNet ``BasicBlock``, a conv followed by
    the named norm. Read from mmaction2 1.2's and mmseg 1.2's forwards.
    Keyed by ``(module, class name)``: mmseg is an extra, imported only
    where its blocks are in a model."""
    resnet3d = 'mmaction.models.backbones.resnet3d'
    return {
        (resnet3d, 'BasicBlock3d'): (('conv1', ), 'conv2', None),
        (resnet3d, 'Bottleneck3d'): (('conv1', 'conv2'), 'conv3', None),
        ('mmaction.models.backbones.x3d', 'BlockX3D'):
        (('conv1', 'conv2', 'se_module', 'swish'), 'conv3', None),
        ('mmseg.models.backbones.resnet', 'BasicBlock'):
        (('conv1', 'norm1', 'relu'), 'conv2', 'norm2'),
    }


def _last_conv(block: nn.Module, plan) -> Optional[Tuple[str, ...]]:
    """The path (child names) of the conv that ends ``block`` under
    ``plan`` if it can apply the block's sum and ReLU
    (:func:`_run_with_residual`): its BN folded (an identity in its place),
    no activation of its own, no explicit padding; else None. Checked once,
    when the block is fused."""
    from mmcv.cnn import ConvModule
    _, last, norm = plan
    conv, path = getattr(block, last), (last, )
    if norm is not None:  # a bare conv, then the named norm
        if not isinstance(getattr(block, norm), nn.Identity):
            return None  # its BN was not folded
    elif type(conv) is not ConvModule or (
            conv.with_activation or conv.with_explicit_padding
            or tuple(conv.order) != ('conv', 'norm', 'act')
            or not (conv.with_norm and isinstance(conv.norm, nn.Identity))):
        return None
    else:
        conv, path = conv.conv, (last, 'conv')
    inner = conv
    if _is_2plus1d(conv) and not _is_dynamic(conv):
        if not all(isinstance(m, nn.Identity) for m in (conv.bn_s, conv.relu)):
            return None
        inner = conv.conv_t
    if _is_dynamic(inner):
        takes = inner.fused_for_inference and not inner.fused_relu
    else:
        takes = isinstance(inner, _FusedConvMixin) and not inner.fused_relu
    return path if takes else None


def _run_with_residual(conv: nn.Module, x: torch.Tensor,
                       residual: torch.Tensor) -> torch.Tensor:
    """``relu(conv(x) + residual)`` for the conv :func:`_last_conv` found,
    in the output pass of the conv."""
    if _is_2plus1d(conv) and not _is_dynamic(conv):
        # mmaction's Conv2plus1d with its bn_s and ReLU folded in conv_s
        return conv.conv_t(conv.conv_s(x), residual)
    return conv(x, residual)


def _se_in_place(se: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mmaction's ``SEModule`` (``x * sigmoid(fc2(relu(fc1(mean(x)))))``,
    read from mmaction2 1.2) with the multiply in place on ``x``."""
    return x.mul_(se.sigmoid(se.fc2(se.relu(se.fc1(se.avg_pool(x))))))


def _swish_in_place(swish: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """mmcv's ``Swish`` (``x * sigmoid(x)``) as ``F.silu`` in place: one
    pass instead of a sigmoid pass and a multiply pass."""
    return F.silu(x, inplace=True)


def _in_place_steps() -> dict:
    """``(module, class name)`` -> the module's forward in place on its
    input, for the children a fused block runs before its last conv
    (:func:`_residual_forward` says when it uses one)."""
    return {
        ('mmaction.models.backbones.x3d', 'SEModule'): _se_in_place,
        ('mmcv.cnn.bricks.swish', 'Swish'): _swish_in_place,
    }


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _keeps(hooks: dict) -> bool:
    return any(not getattr(h, 'reads_shapes_only', False)
               for h in hooks.values())


def _hooked(module: nn.Module) -> bool:
    """Whether a hook could see a tensor ``module`` (or a module inside it)
    takes or returns, and so keep it: a forward or forward-pre hook on any
    of them that is not marked :func:`reads_shapes_only`, or a backward
    hook."""
    return any(
        _keeps(m._forward_hooks) or _keeps(m._forward_pre_hooks)
        or m._backward_hooks or m._backward_pre_hooks
        for m in module.modules())


def _global_hooks() -> bool:
    """Whether hooks registered for every module are set
    (``register_module_forward_hook`` and its kind)."""
    return any(
        getattr(module_py, name, None)
        for name in ('_global_forward_hooks', '_global_forward_pre_hooks',
                     '_global_backward_hooks', '_global_backward_pre_hooks'))


def _may_write(out: torch.Tensor, module: nn.Module,
               producer: Optional[nn.Module], written: bool,
               kept: Tuple[torch.Tensor, ...]) -> bool:
    """Whether ``module``'s in-place step may write ``out``, which
    ``producer`` (None: no child yet) returned and an in-place step may
    have written since (``written``): see :func:`_residual_forward`."""
    if not written and (producer is None or _hooked(producer)):
        return False  # the block input, or a tensor a hook may keep
    storage = _storage(out)
    return not (_hooked(module) or _global_hooks()
                or any(_storage(t) == storage for t in kept))


def _residual_forward(self, x: torch.Tensor) -> torch.Tensor:
    """The forward of a fused residual block (see the module docstring):
    the shortcut first, then the convs, the last one with the sum and the
    ReLU.

    A child with an in-place form (:func:`_in_place_steps`) runs it on a
    tensor no one else can hold: one the block made (not its input or its
    shortcut, by storage) that the child before it returned with no hook
    in that child to keep it (or an earlier in-place step wrote), when the
    child itself has no hooks and no global module hooks are set.
    Otherwise the child runs its own forward."""
    prefix, path = self._fused_residual_plan
    identity = x if self.downsample is None else self.downsample(x)
    out = x
    steps = _in_place_steps()
    # the child that returned `out`, and whether an in-place step wrote it
    # since (then it is already known to be this forward's own)
    producer, written = None, False
    for name in prefix:
        module = getattr(self, name, None)
        if module is None:
            continue
        cls = type(module)
        step = steps.get((cls.__module__, cls.__qualname__))
        # (checked only where a step could run: other blocks pay nothing)
        if step is not None and _may_write(out, module, producer, written,
                                           (x, identity)):
            out = step(module, out)
            written = True
        else:
            out = module(out)
            producer, written = module, False
    conv = self
    for name in path:
        conv = getattr(conv, name)
    out = _run_with_residual(conv, out, identity)
    if getattr(self, 'non_local', False):
        out = self.non_local_block(out)
    return out


def _fused_block_class(cls: type) -> type:
    """The fused subclass of block class ``cls``, made once, a module
    attribute (``varedd_mm.ops.fuse.Fused<name>``) so that fused models
    pickle; :func:`__getattr__` makes it in a process that unpickles one."""
    name = f'Fused{cls.__name__}'
    fused = globals().get(name)
    if fused is None:
        doc = (f'{cls.__name__} with its residual sum and ReLU in the last '
               'conv (made by varedd_mm.fuse_conv_bn).')
        fused = type(name, (cls, ),
                     dict(forward=_residual_forward, __doc__=doc))
        fused.__module__, fused.__qualname__ = __name__, name
        globals()[name] = fused
    return fused


def __getattr__(name: str):
    for module, cls_name in _residual_plans():
        if name == f'Fused{cls_name}':
            cls = getattr(importlib.import_module(module), cls_name)
            return _fused_block_class(cls)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def _fuse_residual_blocks(model: nn.Module) -> None:
    plans = _residual_plans()
    for module in model.modules():
        cls = type(module)
        plan = plans.get((cls.__module__, cls.__qualname__))
        if plan is None or type(module.relu) is not nn.ReLU:
            continue
        path = _last_conv(module, plan)
        if path is None:
            continue
        # (children run first, path of the last conv)
        module._fused_residual_plan = (plan[0], path)
        module.__class__ = _fused_block_class(type(module))


def _channels_last(t):
    """``t`` laid out channels-last if it is a 4D / 5D tensor (a copy only
    where it is not already), else ``t``."""
    if not isinstance(t, torch.Tensor) or t.dim() not in (4, 5):
        return t
    return t.contiguous(memory_format=torch.channels_last if t.dim() ==
                        4 else torch.channels_last_3d)


def to_channels_last(model: nn.Module) -> nn.Module:
    """Lay every 4D / 5D parameter and buffer of ``model`` out channels-last
    (``torch.channels_last`` / ``channels_last_3d`` by rank; ``Module.to
    (memory_format=...)`` takes one format, and a video model holds both
    ranks). Feed the model channels-last inputs: convs, BNs, ReLUs and the
    VA-RED² rebuilds keep the layout, and oneDNN / cuDNN then run without
    reordering activations. In place; returns ``model``."""
    return model._apply(_channels_last)


def _inputs_channels_last(module: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook: the 4D / 5D tensors among ``args`` channels-last."""
    return tuple(_channels_last(t) for t in args)


def fast_inference(model: nn.Module, channels_last: bool = False) -> nn.Module:
    """Prepare ``model`` for fast inference, the execution
    ``tools/analysis/benchmark.py`` times: eval mode and
    :func:`fuse_conv_bn`; with ``channels_last`` also
    :func:`to_channels_last`, and the inputs of the model's backbone
    (``model.backbone``: a recognizer, detector or segmentor, whose data
    preprocessor gives NCDHW / NCHW batches) or of the model itself (a
    network) converted to channels-last as they enter, so that callers
    keep feeding what they fed. Outputs equal the unfused eval-mode
    model's to float rounding (a gate whose logits are tied within that
    rounding can choose otherwise). The model is then for inference only.

    In place; returns ``model``. A second call with the same
    ``channels_last`` does nothing.

    Raises:
        ValueError: ``channels_last`` is not a bool, or ``model`` was
            already prepared with the other ``channels_last``.
    """
    if not isinstance(channels_last, bool):
        raise ValueError('fast_inference: channels_last must be True or '
                         f'False, got {channels_last!r}')
    done = getattr(model, '_vared2_fast_inference', None)
    if done is not None:
        if done != channels_last:
            raise ValueError(
                f'fast_inference: the model was already prepared with '
                f'channels_last={done}; build it again to change that')
        return model
    model.eval()
    fuse_conv_bn(model)
    if channels_last:
        to_channels_last(model)
        entry = getattr(model, 'backbone', None)
        entry = entry if isinstance(entry, nn.Module) else model
        entry.register_forward_pre_hook(_inputs_channels_last)
    model._vared2_fast_inference = channels_last
    return model
