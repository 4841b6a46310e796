# Copyright (c) varedd_mm contributors. All rights reserved.
"""Residual blocks of fused models (``fuse_conv_bn``): the block's sum and
ReLU are written by its last conv (oneDNN's binary post-op, or the compiled
rebuild reading the shortcut), the output is the unfused block's at every
choice, (0, 0) stays the fused base bit for bit, mixed batches take each
group's rows of the shortcut."""
import copy
import pickle
from contextlib import nullcontext

import pytest
import torch
import torch.nn as nn
from _fused_helpers import grouped_outputs, randomise
from mmaction.models.backbones.resnet3d import BasicBlock3d, Bottleneck3d
from mmaction.models.backbones.x3d import BlockX3D
from mmaction.models.common import Conv2plus1d
from mmcv.cnn import ConvModule
from mmseg.models.backbones.resnet import BasicBlock

import varedd_mm.ops.fuse as fuse_module
from varedd_mm import (VARED2Conv3d, clip_gflops, fixed_policy, fuse_conv_bn,
                       track_flops)
from varedd_mm.ops import native, to_channels_last

DYN = dict(dynamic_cfg=dict(search_space=2))
CONVS = {
    '3d': (dict(type='Conv3d'), dict(type='VARED2Conv3d', **DYN)),
    '2plus1d': (dict(type=Conv2plus1d), dict(type='VARED2Conv2plus1d', **DYN)),
}


def _downsample(inplanes, outplanes, conv_cfg):
    return ConvModule(
        inplanes,
        outplanes,
        1,
        stride=(1, 2, 2),
        bias=False,
        conv_cfg=conv_cfg,
        norm_cfg=dict(type='BN3d'),
        act_cfg=None)


def _make(kind, dynamic):
    """A block of each class ``fuse_conv_bn`` knows, with a downsample
    shortcut where it has one (strided, wider), its convs dynamic or not;
    eval mode, BN statistics and cheap ops away from their init."""
    conv = CONVS['2plus1d' if kind == 'basic2plus1d' else '3d']
    cfg = conv[1] if dynamic else conv[0]
    static = dict(type='Conv3d')  # the shortcut conv stays static
    if kind == 'bottleneck':
        block = Bottleneck3d(
            16,
            8,
            spatial_stride=2,
            downsample=_downsample(16, 32, static),
            conv_cfg=cfg,
            inflate_style='3x1x1')
    elif kind == 'bottleneck_identity':
        block = Bottleneck3d(32, 8, conv_cfg=cfg, inflate_style='3x3x3')
    elif kind in ('basic', 'basic2plus1d'):
        block = BasicBlock3d(
            8,
            16,
            spatial_stride=2,
            downsample=_downsample(8, 16, static),
            conv_cfg=cfg)
    else:  # X3D: squeeze-excitation and swish between conv2 and conv3
        block = BlockX3D(
            16,
            12,
            16,
            se_ratio=0.25,
            conv_cfg=cfg,
            norm_cfg=dict(type='BN3d'),
            act_cfg=dict(type='ReLU'))
    torch.manual_seed(0)
    return randomise(block).eval()


KINDS = ['bottleneck', 'bottleneck_identity', 'basic', 'basic2plus1d', 'x3d']


def _input(kind, batch, channels_last):
    channels = {'bottleneck_identity': 32, 'basic': 8, 'basic2plus1d': 8}
    x = torch.randn(batch, channels.get(kind, 16), 6, 8, 8)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
    return x


def _policy(model, choice):
    return nullcontext() if choice is None else fixed_policy(model, *choice)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('batch', [1, 2])
def test_fused_blocks_match_unfused_at_every_choice(kind, channels_last,
                                                    batch):
    for dynamic in (False, True):
        block = _make(kind, dynamic)
        fused = fuse_conv_bn(copy.deepcopy(block))
        assert type(fused).__name__ == f'Fused{type(block).__name__}'
        assert isinstance(fused, type(block))
        if channels_last:
            to_channels_last(fused)
        x = _input(kind, batch, channels_last)
        choices = [(0, 0), (0, 1), (1, 0), (1, 1)] if dynamic else [None]
        with torch.no_grad():
            for c in choices:
                with _policy(block, c):
                    expected = block(x)
                with _policy(fused, c):
                    out = fused(x)
                torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
                assert (out >= 0).all()
                if channels_last:
                    assert out.is_contiguous(
                        memory_format=torch.channels_last_3d)


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('batch', [1, 2])
def test_fused_block_choice00_is_fused_base_bit_for_bit(
        kind, channels_last, batch):
    dyn, base = _make(kind, True), _make(kind, False)
    base.load_state_dict(dyn.state_dict(), strict=False)
    fd, fb = fuse_conv_bn(dyn), fuse_conv_bn(base)
    if channels_last:
        to_channels_last(fd)
        to_channels_last(fb)
    x = _input(kind, batch, channels_last)
    with torch.no_grad(), fixed_policy(fd, 0, 0):
        out = fd(x)
    with torch.no_grad():
        expected = fb(x)
    assert torch.equal(out, expected)
    assert out.stride() == expected.stride()


def test_the_sum_is_a_conv_post_op(monkeypatch):
    """The fused block runs no separate add or ReLU module: its last conv
    gets the shortcut and applies the sum and the ReLU (how:
    ``test_residual_conv_paths``)."""
    block = fuse_conv_bn(_make('bottleneck', False))
    seen = []
    original = fuse_module.reduced_conv

    def spy(*args):
        if len(args) > 8 and args[8] is not None:  # a residual
            seen.append(args[7])  # and the ReLU
        return original(*args)

    monkeypatch.setattr(fuse_module, 'reduced_conv', spy)
    relus = []
    block.relu.register_forward_hook(lambda *a: relus.append(1))
    with torch.no_grad():
        block(_input('bottleneck', 2, False))
    assert seen == [True]  # one conv (conv3) took the shortcut and ReLU
    assert not relus  # the block's own ReLU module no longer runs


@pytest.fixture
def kernel():
    if not native.native_enabled() or native.load_native() is None:
        pytest.skip('the rebuild kernel is not available here '
                    f'({native.native_error() or "VARED2_NATIVE=0"})')
    return native


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('kind', ['bottleneck_identity', 'basic2plus1d'])
@pytest.mark.parametrize('grad', [False, True])
def test_mixed_batch_takes_each_groups_rows_of_the_shortcut(
        monkeypatch, channels_last, kind, grad):
    """Grouped inference: the batch output is allocated first, reduced
    groups are written into it with their rows of the shortcut, the (0, 0)
    group adds its rows as it is copied in; the torch-op path agrees. Also
    with grad enabled (a model run outside ``no_grad``): the fused layers'
    weights no longer require grad, so nothing needs autograd."""
    kernel = native.native_enabled() and native.load_native() is not None
    block = _make(kind, True)
    fused = fuse_conv_bn(copy.deepcopy(block))
    if channels_last:
        to_channels_last(fused)
    x = _input(kind, 5, channels_last)
    choices = [(1, 1), (0, 0), (1, 1), (1, 0), (0, 0)]
    with torch.set_grad_enabled(grad):
        expected, out, fallback, calls = grouped_outputs(
            monkeypatch, block, fused, x, choices)
    with_residual = [
        into is not None and residual is not None
        for into, residual, _ in calls
    ]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fallback, expected, rtol=1e-5, atol=1e-5)
    # the block's last layer wrote both reduced groups with the shortcut
    assert with_residual.count(True) == (2 if kernel else 0)
    assert not out.requires_grad


def test_fused_layers_refuse_inputs_that_require_grad():
    fused = fuse_conv_bn(_make('bottleneck_identity', True))
    assert not any(p.requires_grad for p in fused.parameters())
    x = _input('bottleneck_identity', 2, False).requires_grad_()
    with pytest.raises(RuntimeError, match='passes gradients'):
        fused(x)


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('into', [False, True])
def test_kernel_adds_the_residual_before_the_relu(kernel, channels_last, into):
    fmt = (
        torch.channels_last_3d if channels_last else torch.contiguous_format)
    blocks = [
        torch.randn(2, c, 3, 5, 6).contiguous(memory_format=fmt)
        for c in (8, 8)
    ]
    coef = torch.randn(2 + 3 + 2, 16)
    plain = kernel.native_rebuild(blocks, 6, 2, coef, False)
    if into:
        residual = torch.randn(3, 16, 6, 5, 6).contiguous(memory_format=fmt)
        out = torch.full_like(residual, float('nan'))
        assert kernel.native_rebuild(blocks, 6, 2, coef, True, (out, [2, 0]),
                                     residual) is None
        assert out[1].isnan().all()
        torch.testing.assert_close(
            out[[2, 0]], (plain + residual[[2, 0]]).relu(),
            rtol=1e-6,
            atol=1e-6)
    else:
        # a residual in the other layout is converted, not misread
        residual = torch.randn(2, 16, 6, 5, 6)
        out = kernel.native_rebuild(blocks, 6, 2, coef, True, None, residual)
        torch.testing.assert_close(
            out, (plain + residual).relu(), rtol=1e-6, atol=1e-6)


def test_ignored_destination_leaves_the_residual_and_relu_to_the_caller(
        kernel):
    """Blocks whose layout is ambiguous (one frame, one pixel) are read as
    contiguous; a channels-last batch output is then not written into, and
    the returned output must carry neither the residual nor the ReLU that
    goes with it (the caller adds both as it copies the rows in)."""
    blocks = [torch.randn(2, 8, 1, 1, 1)]  # one computed frame, one pixel
    coef = torch.randn(2 + 3 + 2, 8)
    out = torch.zeros(3, 8, 2, 1,
                      1).contiguous(memory_format=torch.channels_last_3d)
    assert not out.is_contiguous()
    residual = torch.randn(3, 8, 2, 1, 1)
    got = kernel.native_rebuild(blocks, 2, 2, coef, True, (out, [2, 0]),
                                residual)
    plain = kernel.native_rebuild(blocks, 2, 2, coef, False)
    assert got is not None and torch.equal(got, plain)
    assert (got < 0).any()  # no ReLU either
    assert not out.any()


def test_residual_errors(kernel):
    ops = kernel.load_native()
    y = torch.randn(2, 4, 2, 9)
    coef = torch.ones(2 + 3 + 2, 4)
    with pytest.raises(RuntimeError, match=r'residual must be a float32 CPU'):
        ops.rebuild([y], 4, 2, coef, True, False, torch.randn(2, 4, 3, 9))
    with pytest.raises(RuntimeError, match='residual is not dense per clip'):
        ops.rebuild([y], 4, 2, coef, True, False,
                    torch.randn(2, 4, 9, 4).transpose(2, 3))
    layer = _make('bottleneck_identity', True).conv3.conv
    x = torch.randn(1, 8, 2, 4, 4)
    with pytest.raises(RuntimeError, match='fused model only'):
        layer(x, torch.randn(1, 32, 2, 4, 4))


@pytest.mark.parametrize('onednn', [True, False])
@pytest.mark.parametrize('channels_last', [False, True])
def test_residual_conv_paths(monkeypatch, onednn, channels_last):
    """A fused conv given a shortcut: oneDNN's binary post-op
    channels-last (one write), conv then one in-place ``_add_relu_`` NCDHW
    (torch's binary op would run aten's conv dispatch there), ``F.conv3d``
    then in-place ops without oneDNN; the same values every way, also for a
    dynamic conv at (0, 0) with no BN folded in."""
    if onednn and not torch.backends.mkldnn.is_available():
        pytest.skip('oneDNN is not available in this torch build')
    calls = []
    binary = torch.ops.mkldnn._convolution_pointwise.binary
    aten = torch.ops.aten
    add_relu = aten._add_relu_

    class Ops:

        def __getattr__(self, name):
            return getattr(aten, name)

        @staticmethod
        def _add_relu_(*args):
            calls.append('add_relu')
            return add_relu(*args)

    def spy_binary(*args):
        calls.append('binary')
        return binary(*args)

    import varedd_mm.ops.backend as backend
    conv = nn.Conv3d(8, 16, 3, padding=1).eval()
    layer = fuse_conv_bn(
        nn.Sequential(nn.Conv3d(8, 16, 3, padding=1),
                      nn.BatchNorm3d(16)).eval())[0]
    layer.load_state_dict(conv.state_dict())
    dyn = VARED2Conv3d(8, 16, 3, padding=1).eval()
    dyn.load_state_dict(conv.state_dict(), strict=False)
    dyn.fuse_bn(None)  # fused, no BN after it
    x = torch.randn(1, 8, 4, 6, 6)
    r = torch.randn(1, 16, 4, 6, 6)
    if channels_last:
        x, r = (
            t.contiguous(memory_format=torch.channels_last_3d) for t in (x, r))
        for m in (conv, layer, dyn):
            to_channels_last(m)
    monkeypatch.setattr(backend.torch.ops.mkldnn._convolution_pointwise,
                        'binary', spy_binary)
    monkeypatch.setattr(backend.torch.ops, 'aten', Ops())
    with torch.no_grad(), torch.backends.mkldnn.flags(enabled=onednn):
        expected = (conv(x) + r).relu()
        out = layer(x, r)
        with fixed_policy(dyn, 0, 0):
            out_dyn = dyn(x, r)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_dyn, expected, rtol=1e-5, atol=1e-5)
    if not onednn:
        assert calls == []
    else:
        # the fused conv; the dynamic conv without a folded BN runs its own
        # conv and then the sum
        assert calls == ['binary' if channels_last else 'add_relu']


def test_blocks_fuse_only_when_their_shape_is_known():
    """A block whose last ConvModule keeps an activation, or whose ReLU is
    another module, keeps its forward (and its output)."""
    x = _input('bottleneck_identity', 2, False)
    other_relu = _make('bottleneck_identity', False)
    other_relu.relu = nn.LeakyReLU()
    with_activation = _make('bottleneck_identity', False)
    with_activation.conv3.with_activation = True
    with_activation.conv3.activate = nn.Tanh()
    for block in (other_relu, with_activation):
        with torch.no_grad():
            expected = block(x)
            fused = fuse_conv_bn(copy.deepcopy(block))
            assert type(fused) is Bottleneck3d
            torch.testing.assert_close(
                fused(x), expected, rtol=1e-5, atol=1e-5)


def test_non_local_block_runs_after_the_fused_sum():
    block = Bottleneck3d(
        32,
        8,
        non_local=True,
        non_local_cfg=dict(
            sub_sample=True, use_scale=False, mode='embedded_gaussian'),
        conv_cfg=dict(type='VARED2Conv3d', **DYN))
    block.eval()
    x = _input('bottleneck_identity', 2, False)
    with torch.no_grad(), fixed_policy(block, 1, 1):
        expected = block(x)
        fused = fuse_conv_bn(copy.deepcopy(block))
        assert type(fused).__name__ == 'FusedBottleneck3d'
        torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)


def test_fused_blocks_pickle():
    """The fused classes are module attributes (made on demand when a
    fused model is unpickled in a fresh process)."""
    block = fuse_conv_bn(_make('bottleneck', True))
    data = pickle.dumps(block)
    del fuse_module.FusedBottleneck3d  # as in a fresh process
    loaded = pickle.loads(data)
    assert type(loaded).__name__ == 'FusedBottleneck3d'
    assert type(loaded).__module__ == 'varedd_mm.ops.fuse'
    x = _input('bottleneck', 2, False)
    with torch.no_grad(), fixed_policy(block, 1,
                                       1), fixed_policy(loaded, 1, 1):
        assert torch.equal(loaded(x), block(x))


def _seg_block(dynamic):
    """mmseg's ResNet ``BasicBlock`` (PSPNet's ResNet-18): bare convs with
    named norms, its ReLU after the first norm and after the sum."""
    cfg = dict(type='VARED2Conv2d', **DYN) if dynamic else None
    block = BasicBlock(
        8,
        16,
        stride=2,
        downsample=nn.Sequential(
            nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16)),
        conv_cfg=cfg)
    torch.manual_seed(0)
    return randomise(block).eval()


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('batch', [1, 2])
def test_mmseg_basic_block(channels_last, batch):
    """Fused like the video blocks: the unfused output at every channel
    choice, and (0, 0) the fused base bit for bit."""
    x = torch.randn(batch, 8, 9, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    dyn, base = _seg_block(True), _seg_block(False)
    base.load_state_dict(dyn.state_dict(), strict=False)
    with torch.no_grad():
        expected = {c: None for c in [(0, 0), (0, 1)]}
        for c in expected:
            with fixed_policy(dyn, *c):
                expected[c] = dyn(x)
        base_out = base(x)
        fd, fb = fuse_conv_bn(dyn), fuse_conv_bn(base)
        assert type(fd).__name__ == type(fb).__name__ == 'FusedBasicBlock'
        if channels_last:
            to_channels_last(fd)
            to_channels_last(fb)
        for c, out in expected.items():
            with fixed_policy(fd, *c):
                torch.testing.assert_close(fd(x), out, rtol=1e-5, atol=1e-5)
        fused_base = fb(x)
        torch.testing.assert_close(fused_base, base_out, rtol=1e-5, atol=1e-5)
        with fixed_policy(fd, 0, 0):
            assert torch.equal(fd(x), fused_base)


def _spy_steps(monkeypatch):
    """Wrap the fused blocks' in-place steps; returns the list of (module
    class name, data pointer of the tensor they wrote) they append to."""
    calls = []
    steps = fuse_module._in_place_steps()

    def spied():
        return {
            key: (lambda m, x, f=f: calls.append(
                (type(m).__name__, x.data_ptr())) or f(m, x))
            for key, f in steps.items()
        }

    monkeypatch.setattr(fuse_module, '_in_place_steps', spied)
    return calls


@pytest.mark.parametrize('dynamic', [False, True])
@pytest.mark.parametrize('channels_last', [False, True])
def test_x3d_se_and_swish_run_in_place(monkeypatch, dynamic, channels_last):
    """In a fused BlockX3D the squeeze-excitation and the swish write into
    the depthwise conv's output (conv3 reads that very tensor), the block
    input is left as it was, and the output is the unfused block's."""
    block = _make('x3d', dynamic)
    fused = fuse_conv_bn(copy.deepcopy(block))
    if channels_last:
        to_channels_last(fused)
    x = _input('x3d', 2, channels_last)
    x_before = x.clone()
    calls = _spy_steps(monkeypatch)
    read = []
    fused.conv3.conv.register_forward_pre_hook(
        lambda m, a: read.append(a[0].data_ptr()))
    choice = (1, 1) if dynamic else None
    with torch.no_grad(), _policy(fused, choice), _policy(block, choice):
        out = fused(x)
        expected = block(x)
    assert [name for name, _ in calls] == ['SEModule', 'Swish']
    assert calls[0][1] == calls[1][1] == read[0]  # one tensor, in place
    assert torch.equal(x, x_before)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def _hook_keeping_output(kept):

    def hook(module, args, output):
        kept.append((output, output.clone()))

    return hook


@pytest.mark.parametrize('where', [
    'conv2', 'conv2.conv', 'se_module', 'se_module.avg_pool', 'swish', 'global'
])
def test_x3d_in_place_steps_leave_hooked_tensors_alone(monkeypatch, where):
    """A hook that may keep a tensor the steps would write (on the conv
    that made it, on the SE or swish module or a module inside them, or a
    global module hook) turns the in-place forms off where they could
    reach it: what the hook kept stays as it was, the output is right."""
    block = _make('x3d', False)
    fused = fuse_conv_bn(copy.deepcopy(block))
    x = _input('x3d', 2, False)
    calls = _spy_steps(monkeypatch)
    kept = []
    hook = _hook_keeping_output(kept)
    if where == 'global':
        handle = nn.modules.module.register_module_forward_hook(hook)
    else:
        handle = fused.get_submodule(where).register_forward_hook(hook)
    try:
        with torch.no_grad():
            out = fused(x)
    finally:
        handle.remove()
    with torch.no_grad():
        expected = block(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert kept
    for tensor, copy_then in kept:
        assert torch.equal(tensor, copy_then)
    # what may still run in place: a step on a tensor no hook can hold
    # (the SE module's own output where only the conv before it is hooked)
    allowed = {
        'conv2': ['Swish'],
        'conv2.conv': ['Swish'],
        'swish': ['SEModule']
    }
    assert [name for name, _ in calls] == allowed.get(where, [])


def test_x3d_in_place_steps_spare_the_block_input(monkeypatch):
    """Where the SE module would get the block's input itself (its convs
    before it replaced by identities) it runs its own forward: the input
    is not written."""
    torch.manual_seed(0)
    block = BlockX3D(
        16,
        16,
        16,
        se_ratio=0.25,
        conv_cfg=dict(type='Conv3d'),
        norm_cfg=dict(type='BN3d'),
        act_cfg=dict(type='ReLU'))
    fused = fuse_conv_bn(randomise(block).eval())
    fused.conv1 = nn.Identity()
    fused.conv2 = nn.Identity()
    calls = _spy_steps(monkeypatch)
    x = _input('x3d', 2, False)
    x_before = x.clone()
    with torch.no_grad():
        fused(x)
    assert torch.equal(x, x_before)
    assert [name for name, _ in calls] == ['Swish']  # on SE's new output


@pytest.mark.parametrize('dynamic', [False, True])
def test_x3d_in_place_steps_run_under_the_flops_counter(monkeypatch, dynamic):
    """The FLOPs counter's hooks read shapes only (``reads_shapes_only``):
    a tracked block (as every VA-RED² task model tracks itself) still runs
    its steps in place, and counts what the unfused block counts."""
    block = _make('x3d', dynamic)
    fused = copy.deepcopy(block)
    track_flops(block)
    track_flops(fused)
    fuse_conv_bn(fused)
    x = _input('x3d', 2, False)
    calls = _spy_steps(monkeypatch)
    choice = (1, 1) if dynamic else None
    with torch.no_grad(), _policy(fused, choice), _policy(block, choice):
        out = fused(x)
        expected = block(x)
    assert [name for name, _ in calls] == ['SEModule', 'Swish']
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(clip_gflops(fused), clip_gflops(block))
