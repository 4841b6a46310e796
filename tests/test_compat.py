# Copyright (c) varedd_mm contributors. All rights reserved.
"""One test per upstream gap handled in :mod:`varedd_mm.compat`."""
import os
import pickle
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer

from varedd_mm import compat


def test_mmaction_models_imports_and_drn_refuses_clearly():
    import mmaction.models  # noqa: F401  fails without the shim
    from mmaction.models.localizers import DRN
    if compat.mmaction_drn_missing():
        with pytest.raises(
                ImportError,
                match='DRN is missing from the '
                'installed mmaction2 1.2.0 wheel'):
            DRN()


def test_numpy2_aliases_used_by_mmaction():
    """The removed aliases are the numpy 2 functions, and mmaction code that
    calls them runs."""
    assert np.Inf == np.inf and np.isinf(np.Inf) and np.Inf > 0
    assert np.trapz is np.trapezoid
    assert np.in1d is np.isin
    assert np.trapz([1.0, 2.0, 3.0]) == 4.0
    assert np.in1d([1, 5], [5]).tolist() == [False, True]
    from mmaction.evaluation.functional import average_recall_at_avg_proposals

    # uses np.trapz (and np.Inf-free arithmetic) on real proposal data:
    # one ground-truth segment, one proposal that matches it exactly
    gt = {'v': np.array([[0.0, 10.0]])}
    proposals = {'v': np.array([[0.0, 10.0, 1.0]])}
    recall, _, _, auc = average_recall_at_avg_proposals(
        gt, proposals, total_num_proposals=1, max_avg_proposals=1)
    assert np.all(recall[:, -1] == 1.0)
    assert auc > 0


def _toy_runner(work_dir, **kwargs):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Reg(BaseModel):

        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            out = self.fc(inputs).squeeze(1)
            if mode == 'loss':
                return dict(loss=((out - labels)**2).mean())
            return out

    class Data(torch.utils.data.Dataset):

        def __len__(self):
            return 8

        def __getitem__(self, i):
            return dict(inputs=torch.ones(2) * i, labels=torch.tensor(1.0))

    return Runner(
        model=Reg(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=Data(),
            batch_size=4,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=True, max_epochs=kwargs.pop('max_epochs', 1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        **kwargs)


def test_mmengine_checkpoints_load_with_weights_only(tmp_path):
    """``torch.load`` keeps ``weights_only=True`` yet loads what mmengine
    writes (HistoryBuffer, numpy state), and ``resume`` works."""
    _toy_runner(tmp_path).train()
    ckpt = tmp_path / 'epoch_1.pth'
    state = torch.load(str(ckpt))  # default weights_only=True on torch>=2.6
    assert isinstance(state['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)
    runner = _toy_runner(tmp_path, max_epochs=2, resume=True)
    runner.train()
    assert runner.epoch == 2
    assert (tmp_path / 'epoch_2.pth').exists()


class _Evil:

    def __init__(self, target, name):
        self.target, self.name = target, name

    def __reduce__(self):
        return (getattr, (self.target, self.name))


class _Call:

    def __reduce__(self):
        return (os.system, ('true', ))


def test_weights_only_still_refuses_unsafe_getattr(tmp_path):
    ok = tmp_path / 'ok.pth'
    torch.save({'m': _Evil(HistoryBuffer, 'mean')}, str(ok))
    assert torch.load(str(ok))['m'] is HistoryBuffer.mean
    bad = tmp_path / 'bad.pth'
    torch.save({'m': _Evil(HistoryBuffer, '__init__')}, str(bad))
    with pytest.raises(pickle.UnpicklingError, match='only HistoryBuffer'):
        torch.load(str(bad))
    # anything else a checkpoint could smuggle is refused by torch itself
    worse = tmp_path / 'worse.pth'
    torch.save({'m': _Call()}, str(worse))
    with pytest.raises(pickle.UnpicklingError):
        torch.load(str(worse))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only path')
def test_pytorch_launcher_on_cpu_only_torch():
    """``--launcher pytorch`` on CPU: mmengine's init_dist and its DDP
    wrapper (which passes device_ids) work with gloo."""
    code = textwrap.dedent("""
        import torch, varedd_mm
        from mmengine.dist import init_dist, get_backend
        from mmengine.model import MMDistributedDataParallel
        init_dist('pytorch')  # runner default backend: nccl
        model = MMDistributedDataParallel(
            module=torch.nn.Linear(2, 2), device_ids=[0])
        model(torch.randn(3, 2)).sum().backward()
        print('backend', get_backend())
        # what the interpreter runs at exit destroys the process group
        import atexit
        atexit._run_exitfuncs()
        print('initialized after exit hooks',
              torch.distributed.is_initialized())
    """)
    env = dict(
        os.environ,
        RANK='0',
        LOCAL_RANK='0',
        WORLD_SIZE='1',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT=str(_free_port()))
    out = subprocess.run([sys.executable, '-c', code],
                         env=env,
                         capture_output=True,
                         text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'backend gloo' in out.stdout
    assert 'initialized after exit hooks False' in out.stdout


# MultiSports: one class, one 3-frame video (h=100, w=200), one GT tube
_MS_W, _MS_H = 200, 100
_MS_GT_BOX = [20, 20, 80, 80]
_MS_FP_BOX = [120, 20, 180, 80]  # disjoint from the GT box
_MS_GT = dict(
    labels=['a'],
    test_videos=[['v']],
    nframes={'v': 3},
    resolution={'v': (_MS_H, _MS_W)},
    gttubes={
        'v': {
            0: [np.array([[f, *_MS_GT_BOX] for f in (1, 2, 3)], float)]
        }
    })
# per frame: (box, score); tube A on the GT box, tube B a false positive,
# and last a lone low-score box (a 1-frame tube below the 0.005 cut)
_MS_DETS = {
    1: [(_MS_GT_BOX, 0.8), (_MS_FP_BOX, 0.95)],
    2: [(_MS_GT_BOX, 0.9), (_MS_FP_BOX, 0.2)],
    3: [(_MS_GT_BOX, 0.7), (_MS_FP_BOX, 0.05), ([20, 85, 60, 99], 0.004)],
}


def _multisports_metrics(ann_file):
    from mmaction.evaluation.metrics import MultiSportsMetric
    metric = MultiSportsMetric(
        str(ann_file),
        metric_options=dict(
            F_mAP=dict(thr=0.5),
            V_mAP=dict(thr=(0.2, 0.5), all=True, tube_thr=2)),
        verbose=False)
    scale = torch.tensor([_MS_W, _MS_H, _MS_W, _MS_H], dtype=torch.float32)
    metric.process(None, [
        dict(
            video_id='v.mp4',
            timestamp=frame,
            pred_instances=dict(
                bboxes=torch.tensor([box], dtype=torch.float32) / scale,
                scores=torch.tensor([[score]])))
        for frame, dets in _MS_DETS.items() for box, score in dets
    ])
    return metric.compute_metrics(metric.results)


def test_multisports_video_map_scores_each_box_by_its_own_detection(
        tmp_path, monkeypatch):
    """Hand-derived values. frame-mAP@0.5: by score B1 (FP), A2, A1, A3
    (TP), then FPs: precision 3/4 at recall 1, AP 75. Tubes: A (0.8, 0.9,
    0.7: mean 0.8) matches the GT tube exactly (IoU 1), B (mean 0.4) misses
    it, the lone box is cut: A then B, video-AP 100 at every threshold.
    mmaction2 1.2.0 scores every box with the last row's score (0.004), so
    every tube is cut and its video-mAP is 0."""
    from mmaction.evaluation.functional import multisports_utils as mu
    ann_file = tmp_path / 'gt.pkl'
    with open(ann_file, 'wb') as f:
        pickle.dump(_MS_GT, f)

    result = _multisports_metrics(ann_file)
    assert result['frameAP'] == pytest.approx(75.0)
    for key in ('v_map@0.2', 'v_map@0.5', 'v_map_0.05:0.45', 'v_map_0.10:0.90',
                'v_map_0.50:0.95'):
        assert result[key] == pytest.approx(100.0), key

    # the linked tubes carry their own boxes' scores
    rows = np.array([[0, frame, 0, score, *box]
                     for frame, dets in _MS_DETS.items()
                     for box, score in dets])
    tubes = sorted(
        mu.link_tubes(_MS_GT, rows, len_thre=2)[0], key=lambda t: -t[1])
    assert [t[1] for t in tubes] == pytest.approx([0.8, 0.4])
    assert tubes[0][2][:, -1] == pytest.approx([0.8, 0.9, 0.7])
    assert tubes[1][2][:, -1] == pytest.approx([0.95, 0.2, 0.05])

    # the spatio-temporal IoU videoAP uses: frames 2-3 shared of 1-5
    # (4 frame steps, 1 shared), boxes of area 100 and 50 nested
    b1 = np.array([[f, 0, 0, 10, 10] for f in (1, 2, 3)], float)
    b2 = np.array([[f, 0, 0, 10, 5] for f in (2, 3, 4, 5)], float)
    assert mu.iou3dt_voc(b1, b2) == pytest.approx(0.125)
    assert mu.iou3dt_voc(b1, b2, spatialonly=True) == pytest.approx(0.5)
    assert mu.iou3dt_voc(b1, b2, temporalonly=True) == pytest.approx(0.25)

    # the installed functions are right (fixed here or upstream)
    assert not compat.multisports_stale_score_bug()
    assert not compat.multisports_iou3dt_scalar_bug()

    # where the installed mmaction had the stale score, its own method
    # gives the wrong video-mAP and the same frame-mAP
    upstream = getattr(mu.Dataset.get_vid_dets, '__wrapped__', None)
    if upstream is not None:
        monkeypatch.setattr(mu.Dataset, 'get_vid_dets', upstream)
        stale = _multisports_metrics(ann_file)
        assert stale['frameAP'] == result['frameAP']
        assert stale['v_map@0.5'] == 0.0
