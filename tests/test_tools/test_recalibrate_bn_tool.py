# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/analysis/recalibrate_bn.py: writes exactly the BN statistics the
hook's pass gives, copies everything else, and refuses bad arguments and
checkpoints (real sample clips of ../shared/data/mmaction2_samples)."""
import argparse
import os.path as osp

import pytest
import torch
from mmengine.runner import set_random_seed

from varedd_mm.analysis import build_loader, load_model
from varedd_mm.engine.hooks import inference_forward
from varedd_mm.ops import recalibrate_bn
from varedd_mm.ops.bn import recalibration_targets

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DYN = osp.join(ROOT, 'configs', 'recognition', 'vared2', 'demo',
               'vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py')
TOOL = 'analysis/recalibrate_bn'


@pytest.fixture(scope='module')
def dyn_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    _, model = load_model(DYN)
    path = tmp_path_factory.mktemp('dyn') / 'dyn.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=3)), path)
    return str(path)


def _bn_buffers():
    """State-dict keys of the running statistics of the BNs a
    recalibration may update (not the gates' input standardisation, whose
    buffers keep BN's names)."""
    _, model = load_model(DYN)
    model.train()
    names = {m: n for n, m in model.named_modules()}
    return {
        f'{names[bn]}.{b}'
        for bn in recalibration_targets(model)
        for b in ('running_mean', 'running_var', 'num_batches_tracked')
    }


def _options(opts):
    """``--cfg-options`` strings as the dict the tool merges."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    return parser.parse_args(['--o'] + opts).o


def test_writes_the_statistics_of_the_hook_pass(tool_module, dyn_ckpt,
                                                tmp_path, sample_clip_opts,
                                                capsys):
    """Exactly what ``recalibrate_bn`` through the inference forward gives
    on the same batches (both clips in one batch: groups by choice), and
    only the statistics of the BNs the hook recalibrates change."""
    opts = sample_clip_opts + ['train_dataloader.batch_size=2']
    out = tmp_path / 'recal.pth'
    tool_module(TOOL).main([
        DYN, dyn_ckpt, '--out',
        str(out), '--num-batches', '1', '--device', 'cpu', '--cfg-options'
    ] + opts)
    assert 'on 1 training batches' in capsys.readouterr().out
    # the same pass in this process, same seed, hence the same crops
    set_random_seed(0)
    cfg, model = load_model(DYN, dyn_ckpt, _options(opts))
    loader = build_loader(cfg, 'train')
    assert recalibrate_bn(model, loader, inference_forward, 1) == 1
    expected = model.state_dict()

    before = torch.load(dyn_ckpt, weights_only=False)
    ckpt = torch.load(str(out), weights_only=False)
    old, new = before['state_dict'], ckpt['state_dict']
    assert old.keys() == new.keys() == expected.keys()
    bn = _bn_buffers()
    assert bn and bn <= set(old)
    for key in old:
        assert torch.equal(new[key], expected[key]), key
        if key not in bn:
            assert torch.equal(old[key], new[key]), key
        elif key.endswith('num_batches_tracked'):
            assert new[key].item() == 1, key
        else:  # from the initial 0 / 1 to what the clips give
            assert not torch.equal(old[key], new[key]), key
    assert ckpt['meta']['epoch'] == 3
    assert ckpt['meta']['vared2_recalibrate_bn'] == dict(
        source=dyn_ckpt, num_batches=1, seed=0)


def test_refuses_bad_arguments(tool_module, dyn_ckpt, tmp_path, capsys,
                               sample_clip_opts):
    tool = tool_module(TOOL)
    for argv, message in (
        (['--num-batches', '0'], '--num-batches must be >= 1'),
        (['--out', dyn_ckpt], '--out must differ from CHECKPOINT'),
        (['--out', str(tmp_path / 'no' / 'x.pth')], 'does not exist'),
    ):
        with pytest.raises(SystemExit):
            tool.parse_args([DYN, dyn_ckpt, '--out', 'x.pth'] + argv)
        assert message in capsys.readouterr().err
    # the sample list has two clips: one per batch
    with pytest.raises(ValueError, match='has only 2 batches'):
        tool.main([
            DYN, dyn_ckpt, '--out',
            str(tmp_path / 'x.pth'), '--num-batches', '5', '--cfg-options'
        ] + sample_clip_opts)
    assert not (tmp_path / 'x.pth').exists()
    # a checkpoint of another model is not half-loaded
    ckpt = torch.load(dyn_ckpt, weights_only=False)
    ckpt['state_dict'].pop('cls_head.fc_cls.weight')
    torch.save(ckpt, tmp_path / 'other.pth')
    with pytest.raises(ValueError, match=r"missing \['cls_head.fc_cls"):
        tool.main([
            DYN,
            str(tmp_path / 'other.pth'), '--out',
            str(tmp_path / 'y.pth'), '--cfg-options'
        ] + sample_clip_opts)
    torch.save(dict(weights=1), tmp_path / 'bare.pth')
    with pytest.raises(ValueError, match='expected an mmengine checkpoint'):
        tool.main([DYN, str(tmp_path / 'bare.pth'), '--out', 'y.pth'])


def test_num_batches_default_follows_the_config_and_the_hook(tool_module):
    from mmengine.config import Config

    from varedd_mm.engine.hooks import VARED2RecalibrateBNHook
    tool = tool_module(TOOL)
    cfg = Config.fromfile(DYN)
    (hook, ) = [
        h for h in cfg.custom_hooks if h.type == 'VARED2RecalibrateBNHook'
    ]
    hook.num_batches = 7
    assert tool.hook_batches(cfg) == 7
    del hook['num_batches']
    default = VARED2RecalibrateBNHook().num_batches
    assert tool.hook_batches(cfg) == default
    cfg.custom_hooks = []
    assert tool.hook_batches(cfg) == default
