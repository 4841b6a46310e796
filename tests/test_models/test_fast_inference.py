# Copyright (c) varedd_mm contributors. All rights reserved.
"""Fast inference of whole task models (``varedd_mm.fast_inference``, the
runner hook ``VARED2FastInferenceHook``): the predictions, choices and
realised GFLOPs of the unfused model, with the inputs laid out
channels-last where asked; the FLOPs records of fused and deep-copied
models."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.logging import MMLogger

import varedd_mm
from varedd_mm import clip_gflops, dynamic_layers, fast_inference
from varedd_mm.analysis import load_model
from varedd_mm.engine import VARED2FastInferenceHook
from varedd_mm.ops import clip_policy
from varedd_mm.ops.fuse import FusedConv3d

DEMO = ('configs/recognition/vared2/demo/'
        'vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py')
# clip i takes MIXED[i % 4]: every choice, grouped execution
MIXED = [(0, 0), (1, 1), (0, 1), (1, 0)]


def _recognizer():
    _, model = load_model(DEMO)
    torch.manual_seed(0)
    # BN statistics and affines away from their init, so that folding them
    # changes the conv weights
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _batch(clips=4):
    g = torch.Generator().manual_seed(0)
    return dict(
        inputs=[
            torch.randint(0, 255, (1, 3, 8, 32, 32),
                          generator=g).to(torch.uint8) for _ in range(clips)
        ],
        data_samples=[
            ActionDataSample().set_gt_label(0) for _ in range(clips)
        ])


def _predict(model, policy=MIXED):
    with torch.no_grad(), clip_policy(model, policy):
        return model.test_step(_batch())


@pytest.mark.parametrize('channels_last', [False, True])
def test_fast_recognizer_predicts_what_the_unfused_one_does(channels_last):
    model = _recognizer()
    fast = fast_inference(copy.deepcopy(model), channels_last)
    seen = []  # (registered after fast_inference's own pre-hook)
    fast.backbone.register_forward_pre_hook(
        lambda m, args: seen.append(args[0]))
    expected, got = _predict(model), _predict(fast)
    assert seen[0].is_contiguous(memory_format=torch.channels_last_3d) == (
        channels_last)
    assert all(layer.fused_for_inference for _, layer in dynamic_layers(fast))
    assert any(isinstance(m, FusedConv3d) for m in fast.modules())
    # BNs are left only inside the dynamic layers (their (2+1)D bn_s, which
    # they apply folded)
    inside = {
        id(m)
        for _, layer in dynamic_layers(fast)
        for m in layer.modules()
    }
    assert not any(
        isinstance(m, torch.nn.BatchNorm3d) and id(m) not in inside
        for m in fast.modules())
    for e, g in zip(expected, got):
        torch.testing.assert_close(
            g.pred_score, e.pred_score, rtol=1e-5, atol=1e-5)
        assert torch.equal(g.vared2_choices, e.vared2_choices)
        # the folded BNs and the replaced convs are counted as before
        assert torch.equal(g.vared2_gflops, e.vared2_gflops)
        assert g.vared2_base_gflops == e.vared2_base_gflops
    # the mixed choices were taken (groups of clips)
    assert {tuple(c) for c in got[0].vared2_choices[:, 0].tolist()} == {(0, 0)}
    assert {tuple(c)
            for s in got
            for c in s.vared2_choices[0].tolist()} == set(MIXED)


def test_fast_inference_twice_and_its_errors():
    model = _recognizer()
    fast_inference(model, True)
    hooks = dict(model.backbone._forward_pre_hooks)
    assert fast_inference(model, True) is model  # nothing more to do
    assert dict(model.backbone._forward_pre_hooks) == hooks
    with pytest.raises(
            ValueError, match='already prepared with '
            'channels_last=True'):
        fast_inference(model, False)
    with pytest.raises(
            ValueError, match='channels_last must be True or '
            'False'):
        fast_inference(_recognizer(), 'yes')


def test_fused_deep_copy_leaves_the_originals_flops_record():
    """A deep copy of a tracked model carries a copy of the record; fusing
    the copy hooks the copy's new modules and unhooks nothing of the
    original (whose record keeps counting)."""
    model = _recognizer()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad(), clip_policy(model, MIXED):
        model(x.unsqueeze(1), mode='tensor')
        before = clip_gflops(model).clone()
        hooks = sum(len(m._forward_hooks) for m in model.modules())
        fast = fast_inference(copy.deepcopy(model))
        assert sum(len(m._forward_hooks) for m in model.modules()) == hooks
        model(x.unsqueeze(1), mode='tensor')
        assert torch.equal(clip_gflops(model), before)
    with torch.no_grad(), clip_policy(fast, MIXED):
        fast(x.unsqueeze(1), mode='tensor')
    assert torch.equal(clip_gflops(fast), before)
    # untracking the copy leaves the original's hooks too
    varedd_mm.untrack_flops(fast)
    assert sum(len(m._forward_hooks) for m in fast.modules()) == 0
    assert sum(len(m._forward_hooks) for m in model.modules()) == hooks


def test_hook_fuses_before_the_test_loop():
    model = _recognizer()
    expected = _predict(model)
    runner = SimpleNamespace(
        model=model, logger=MMLogger.get_instance('test_fast_inference'))
    VARED2FastInferenceHook(channels_last=True).before_test(runner)
    assert model._vared2_fast_inference is True
    assert all(layer.fused_for_inference for _, layer in dynamic_layers(model))
    for e, g in zip(expected, _predict(model)):
        torch.testing.assert_close(
            g.pred_score, e.pred_score, rtol=1e-5, atol=1e-5)
    with pytest.raises(
            ValueError, match='channels_last must be True or '
            'False'):
        VARED2FastInferenceHook(channels_last=1)


def test_fusing_the_backbone_of_a_tracked_model_keeps_its_cost():
    """The record a task model attaches to itself still counts what runs
    when only its backbone is fused: the fused convs take the counter's
    hooks of the convs they replace."""
    model = _recognizer()
    expected = _predict(model)
    varedd_mm.fuse_conv_bn(model.backbone)
    for e, g in zip(expected, _predict(model)):
        assert torch.equal(g.vared2_gflops, e.vared2_gflops)
        assert g.vared2_base_gflops == e.vared2_base_gflops


def test_hook_tests_the_ema_weights():
    """With mmengine's EMAHook the averaged weights are tested (as that
    hook tests them), fused, and its swaps around the test epoch, which
    would pair the fused model's parameters with the unfused average's,
    no longer run."""
    from mmengine.hooks import EMAHook
    model = _recognizer()
    ema = EMAHook()
    runner = SimpleNamespace(
        model=model, logger=MMLogger.get_instance('test_fast_inference'))
    ema.before_run(runner)
    with torch.no_grad():  # an average away from the model's weights
        for p in ema.ema_model.module.parameters():
            p.mul_(0.9)
    averaged = copy.deepcopy(ema.ema_model.module).eval()
    expected = _predict(averaged)
    hook = VARED2FastInferenceHook(channels_last=True)
    runner.hooks = [ema, hook]
    # the test loop's calls: every before_test, then every before_test_epoch
    hook.before_test(runner)
    ema.before_test_epoch(runner)
    got = _predict(model)
    ema.after_test_epoch(runner)
    got_after = _predict(model)  # no swap back into the fused model
    for e, g in zip(expected + expected, got + got_after):
        torch.testing.assert_close(
            g.pred_score, e.pred_score, rtol=1e-5, atol=1e-5)
        assert torch.equal(g.vared2_choices, e.vared2_choices)
