# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/analysis/recalibrate_bn.py: re-estimates exactly the BN statistics
the hook's pass does, copies everything else, and refuses bad arguments
(real sample clips of ../shared/data/mmaction2_samples)."""
import os.path as osp

import pytest
import torch

from varedd_mm.analysis import load_model
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


def test_only_the_bn_statistics_change(dyn_ckpt, tmp_path, sample_clip_opts,
                                       run_tool):
    out = tmp_path / 'recal.pth'
    log = run_tool([
        f'tools/{TOOL}.py', DYN, dyn_ckpt, '--out',
        str(out), '--num-batches', '2', '--cfg-options'
    ] + sample_clip_opts)
    assert 'on 2 training batches' in log
    before = torch.load(dyn_ckpt, weights_only=False)
    ckpt = torch.load(str(out), weights_only=False)
    old, new = before['state_dict'], ckpt['state_dict']
    assert old.keys() == new.keys()
    bn = _bn_buffers()
    assert bn and bn <= set(old)
    for key in old:
        if key not in bn:
            assert torch.equal(old[key], new[key]), key
        elif key.endswith('num_batches_tracked'):
            assert new[key].item() == 2, key
        else:  # from the initial 0 / 1 to what the clips give
            assert not torch.equal(old[key], new[key]), key
    assert ckpt['meta']['epoch'] == 3
    assert ckpt['meta']['vared2_recalibrate_bn'] == dict(
        source=dyn_ckpt, num_batches=2, seed=0)


def test_refuses_bad_arguments(tool_module, dyn_ckpt, tmp_path, capsys,
                               sample_clip_opts):
    tool = tool_module(TOOL)
    for argv, message in (
        (['--num-batches', '0'], '--num-batches must be >= 1'),
        (['--out', dyn_ckpt], '--out must differ from CHECKPOINT'),
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
