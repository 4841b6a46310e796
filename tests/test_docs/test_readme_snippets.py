# Copyright (c) varedd_mm contributors. All rights reserved.
"""The README's Python API block runs as written, from the repository
root."""
import os.path as osp
import re

import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def readme_block(heading):
    """The first ```python block after the ``## heading`` of README.md."""
    with open(osp.join(ROOT, 'README.md')) as f:
        text = f.read()
    section = text.split(f'\n## {heading}\n', 1)[1].split('\n## ', 1)[0]
    m = re.search(r'```python\n(.*?)```', section, flags=re.S)
    assert m, f'no python block under "## {heading}"'
    return m.group(1)


def test_public_api_block_runs_as_written(monkeypatch, capsys):
    code = readme_block('Public API')
    monkeypatch.chdir(ROOT)  # the README says: run from the repository root
    namespace = {}
    exec(compile(code, 'README.md (Public API)', 'exec'), namespace)
    model, x = namespace['model'], namespace['x']
    assert type(model).__name__ == 'VARED2Recognizer3D'
    assert x.shape == (2, 1, 3, 8, 32, 32)
    assert namespace['scores'].shape == (2, model.cls_head.num_classes)
    assert 'loss_eff' in namespace['losses']
    printed = capsys.readouterr().out
    forced, learned = [
        torch.tensor(
            [float(v) for v in line.split('[', 1)[1].split(']')[0].split(',')])
        for line in printed.splitlines() if line.startswith('tensor([')
    ][:2]
    # the forced (1, 1) choice costs less than any clip of the full model
    assert len(forced) == len(learned) == 2
    assert (forced > 0).all() and (forced < learned).all()
