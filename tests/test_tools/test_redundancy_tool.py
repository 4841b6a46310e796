# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/analysis/redundancy.py on the real sample clips."""
import json
import os.path as osp

import torch
from mmengine.config import Config

from varedd_mm.analysis import build_model_from_cfg

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DEMO = osp.join(ROOT, 'configs', 'recognition', 'vared2', 'demo')
BASE = osp.join(DEMO, 'r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-rgb.py')
DYN = osp.join(DEMO,
               'vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py')


def _run(run_tool, config, ckpt, out, samples, *extra):
    ann = osp.join(samples, 'annotations', 'video_test_list.txt')
    cmd = [
        'tools/analysis/redundancy.py', config, ckpt, '--out', out, *extra,
        '--cfg-options', f'test_dataloader.dataset.ann_file={ann}',
        f'test_dataloader.dataset.data_prefix.video={samples}',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'
    ]
    stdout = run_tool(cmd)
    with open(out) as f:
        return json.load(f), stdout


def test_redundancy_tool_base_equals_dynamic_at_full_choice(
        tmp_path, shared_dir, run_tool):
    samples = osp.join(shared_dir, 'data', 'mmaction2_samples')
    model = build_model_from_cfg(Config.fromfile(BASE))
    model.init_weights()
    ckpt = str(tmp_path / 'base.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)

    base, stdout = _run(run_tool, BASE, ckpt, str(tmp_path / 'base.json'),
                        samples, '--rmse-rule', 'below', '--layers',
                        r'layer[12]')
    assert '| backbone.layer1.0.conv1 |' in stdout
    assert base['num_videos'] == 2
    assert base['settings']['rmse_rule'] == 'below'
    layers = base['layers']
    assert list(layers)[0] == 'backbone.layer1.0.conv1'
    assert all('layer1' in n or 'layer2' in n for n in layers)
    t = layers['backbone.layer1.0.conv1']['temporal']
    assert -1 <= t['cc'] <= 1 and t['rmse'] > 0 and 0 <= t['rp'] <= 1
    assert t['num_clips'] == 2 * 2  # 2 videos x 2 test views
    assert set(base['by_class']) <= {'0', '1'}

    # the VA-RED2 config is analysed at the full choice: the same numbers
    dyn, _ = _run(run_tool, DYN, ckpt, str(tmp_path / 'dyn.json'), samples,
                  '--rmse-rule', 'below', '--layers', r'layer[12]')
    assert dyn['layers'] == base['layers']
