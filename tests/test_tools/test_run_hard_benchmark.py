# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/run_hard_benchmark.py (issue 12's experiment script): where its
configs meet, the pruned models' schedule, the summary it reads from the
test outputs, its tables and plot. The full run trains for about half an
hour and is not part of the tests."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from varedd_mm.datasets.synthetic_motion_hard import (HARD_CLASSES,
                                                      HARD_STATIC_CLASSES)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


@pytest.fixture(scope='module')
def bench(tool_module):
    return tool_module('run_hard_benchmark')


ADAPTIVE = osp.join(
    ROOT, 'configs', 'recognition', 'vared2', 'demo',
    'vared2-adaptive_r2plus1d_r18_1xb8-8x4x1-12e_synthetic-motion-hard-rgb.py')


@pytest.mark.parametrize('adaptive', [False, True])
def test_vared2_config_starts_from_where_the_script_trains_the_base(
        bench, adaptive):
    base = Config.fromfile(bench.HARD_BASE_CFG)
    dyn = Config.fromfile(ADAPTIVE if adaptive else bench.HARD_DYN_CFG)
    epochs = base.train_cfg.max_epochs
    assert epochs % base.default_hooks.checkpoint.interval == 0
    assert dyn.load_from == osp.join(bench.WORK_DIR, 'base',
                                     f'epoch_{epochs}.pth')
    assert base.model.cls_head.num_classes == len(HARD_CLASSES)
    assert dyn.model.cls_head.num_classes == len(HARD_CLASSES)
    assert dyn.model.backbone.dynamic_cfg.gate.input == 'mean_tdiff'
    assert dyn.model.backbone.dynamic_cfg.gate.norm_input
    # the last fine-tuning epoch is saved and recalibrated
    last = dyn.train_cfg.max_epochs
    assert last % dyn.default_hooks.checkpoint.interval == 0
    assert last % dyn.custom_hooks[0].interval == 0
    if adaptive:  # what the adaptive-policy runs of docs/policy.md used
        assert dyn.model.backbone.dynamic_cfg.dims == ('temporal', )
        assert dyn.model.policy_rank == dict(
            loss_weight=1.0, split=0.5, split_weight=0.3)
        assert last == 12 and dyn.param_scheduler[0].T_max == 12


def test_pruned_models_get_the_vared2_schedule(bench, tmp_path):
    pruned = Config.fromfile(bench.HARD_BASE_CFG)
    pruned.model = dict(
        type='VARED2PrunedModel',
        model=pruned.model.to_dict(),
        structure='pruned.pth')
    pruned_path = tmp_path / 'pruned_config.py'
    pruned.dump(str(pruned_path))
    path = bench.finetune_config(str(pruned_path), bench.HARD_DYN_CFG)
    assert path == str(tmp_path / 'finetune_config.py')
    ft = Config.fromfile(path)
    dyn = Config.fromfile(bench.HARD_DYN_CFG)
    assert ft.model.type == 'VARED2PrunedModel'
    assert ft.train_cfg.max_epochs == dyn.train_cfg.max_epochs
    assert ft.param_scheduler == dyn.param_scheduler
    assert ft.optim_wrapper.optimizer == dyn.optim_wrapper.optimizer
    assert 'paramwise_cfg' not in ft.optim_wrapper
    assert ft.default_hooks.checkpoint == dyn.default_hooks.checkpoint
    assert ft.randomness == dyn.randomness
    # a VA-RED2 schedule or seed changed on the command line reaches them
    # too
    path = bench.finetune_config(
        str(pruned_path), bench.HARD_DYN_CFG, [
            'train_cfg.max_epochs=12', 'param_scheduler.0.T_max=12',
            'randomness.seed=1'
        ])
    ft = Config.fromfile(path)
    assert ft.train_cfg.max_epochs == 12
    assert ft.param_scheduler[0].T_max == 12
    assert ft.randomness.seed == 1
    # and so does the schedule of another VA-RED2 config
    ft = Config.fromfile(bench.finetune_config(str(pruned_path), ADAPTIVE))
    assert ft.train_cfg.max_epochs == 12
    assert ft.param_scheduler == Config.fromfile(ADAPTIVE).param_scheduler


def test_the_base_reference_gets_the_vared2_schedule(bench, tmp_path):
    # --finetune-base: the unpruned base, the VA-RED2 schedule and seed
    path = bench.finetune_config(bench.HARD_BASE_CFG, ADAPTIVE,
                                 ['randomness.seed=3'], str(tmp_path))
    assert path == str(tmp_path / 'finetune_config.py')
    ft = Config.fromfile(path)
    base = Config.fromfile(bench.HARD_BASE_CFG)
    dyn = Config.fromfile(ADAPTIVE)
    assert ft.model == base.model
    assert ft.train_dataloader == base.train_dataloader
    assert ft.train_cfg == dyn.train_cfg
    assert ft.param_scheduler == dyn.param_scheduler
    assert ft.optim_wrapper.optimizer == dyn.optim_wrapper.optimizer
    assert ft.randomness.seed == 3
    # --base-cfg-options reach the base's model, not the schedule
    ft = Config.fromfile(
        bench.finetune_config(
            bench.HARD_BASE_CFG, ADAPTIVE, [], str(tmp_path),
            ['model.cls_head.dropout_ratio=0.25', 'train_cfg.max_epochs=3']))
    assert ft.model.cls_head.dropout_ratio == 0.25
    assert ft.train_cfg == dyn.train_cfg


def test_summary_per_class_and_static_vs_moving(bench, tmp_path,
                                                write_test_dir):
    labels = list(range(10)) * 2
    base_preds = list(labels)
    base_preds[0] = 1  # one static_blocks clip wrong
    dyn_preds = list(labels)
    dyn_preds[5] = dyn_preds[15] = 4  # both right_fast clips wrong
    gflops = [0.2, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4]
    write_test_dir(tmp_path / 'b', base_preds, labels)
    write_test_dir(tmp_path / 'd', dyn_preds, labels, gflops)
    s = bench.demo.recognition_summary(
        str(tmp_path / 'b'), str(tmp_path / 'd'), HARD_CLASSES,
        HARD_STATIC_CLASSES)
    assert s['top1_base'] == pytest.approx(19 / 20)
    assert s['top1_vared2'] == pytest.approx(18 / 20)
    assert s['per_class']['static_blocks']['top1_base'] == 0.5
    assert s['per_class']['right_fast']['top1_vared2'] == 0.0
    assert s['per_class']['right_fast']['top1_base'] == 1.0
    assert s['static_vs_moving_gflops'] == pytest.approx([0.2, 0.4])
    assert s['gflops_ratio'] == pytest.approx(0.32 / 0.5)
    # clips of another test set are refused, not compared
    write_test_dir(tmp_path / 'other', labels[:10], labels[:10], gflops)
    with pytest.raises(RuntimeError, match='same clips'):
        bench.demo.recognition_summary(
            str(tmp_path / 'b'), str(tmp_path / 'other'), HARD_CLASSES,
            HARD_STATIC_CLASSES)


def _summary():
    per_class = {n: dict(top1=0.9, gflops=0.3) for n in HARD_CLASSES}
    return dict(
        classes=list(HARD_CLASSES),
        static_classes=list(HARD_STATIC_CLASSES),
        base=dict(
            top1=0.9,
            gflops=0.5,
            per_class_top1={n: 0.9
                            for n in HARD_CLASSES}),
        vared2=[
            dict(
                budget=b,
                top1=0.85,
                gflops=g,
                gflops_ratio=g / 0.5,
                static_gflops=g * 0.8,
                moving_gflops=g * 1.1,
                per_class=per_class) for b, g in ((0.45, 0.23), (0.6, 0.3))
        ],
        pruned=[
            dict(
                method=m,
                matched_budget=0.6,
                target_gflops=0.3,
                gflops=0.3,
                ratio=0.3,
                top1=0.8) for m in ('l1', 'fpgm')
        ])


def test_tables_and_plot(bench, tmp_path):
    summary = _summary()
    tables = bench.format_tables(summary)
    rows = [line for line in tables.splitlines() if line.startswith('| ')]
    # 1 + 2 + 2 model rows, 2 static-vs-moving rows, 10 class rows, 3
    # header rows
    assert len(rows) == 5 + 2 + 10 + 3
    assert '| l1 pruning, matched to budget 0.6 | 80.0 | 0.300 | 0.60 |' \
        in tables
    assert '| 0.45 | 0.184 | 0.253 | 0.73 |' in tables
    assert '| static_blocks (static) | 90.0 | 90.0, 0.300 | 90.0, 0.300 |' \
        in tables
    png = tmp_path / 'plot.png'
    drawn = bench.plot(summary, str(png))
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    # every model of the summary, each line by GFLOPs
    assert sorted(drawn) == [
        'VA-RED²', 'base R(2+1)D-18', 'fpgm pruning', 'l1 pruning'
    ]
    assert drawn['VA-RED²'] == [
        pytest.approx((0.23, 85.0)),
        pytest.approx((0.3, 85.0))
    ]
    assert drawn['l1 pruning'] == [pytest.approx((0.3, 80.0))]
    # with --finetune-base, its row follows the base's
    summary['base_finetuned'] = dict(top1=0.945, gflops=0.5)
    tables = bench.format_tables(summary)
    lines = tables.splitlines()
    assert lines[3] == ('| base R(2+1)D-18, fine-tuned with the same '
                        'schedule | 94.5 | 0.500 | 1.00 |')
    drawn = bench.plot(summary, str(png))
    assert drawn['base, fine-tuned with the same schedule'] == [
        pytest.approx((0.5, 94.5))
    ]


@pytest.mark.parametrize('argv, message', [
    (['--budgets', '0'], '--budgets must be in'),
    (['--budgets', '0.5', '--prune-budgets', '0.6'], 'among --budgets'),
    (['--base-checkpoint', 'b.pth', '--base-cfg-options', 'a=1'
      ], '--base-cfg-options change how the base is trained'),
    (['--vared2-config', 'no_such.py'], '--vared2-config: no such file'),
])
def test_bad_arguments_are_refused(bench, argv, message, capsys):
    with pytest.raises(SystemExit, match=message):
        bench.parse_args(argv)


def test_steps_rerun_only_what_another_command_did_not_make(
        bench, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(cmd):
        calls.append(cmd)
        (tmp_path / 'wd').mkdir(exist_ok=True)
        (tmp_path / 'wd' / 'pruned_config.py').write_text('')
        return 1.0

    monkeypatch.setattr(bench.demo, 'run', fake_run)
    steps = bench.Steps(['a=1'], rerun=False)
    wd = str(tmp_path / 'wd')
    steps.prune('p', 'base.pth', 0.3, 'l1', wd)
    assert len(calls) == 1 and steps.timing == {'prune p': 1.0}
    steps.prune('p', 'base.pth', 0.3, 'l1', wd)  # same command: skipped
    assert len(calls) == 1
    with pytest.raises(SystemExit, match='made by another command'):
        steps.prune('p', 'base.pth', 0.25, 'l1', wd)  # another target
    assert len(calls) == 1
    bench.Steps(['a=1'], rerun=True).prune('p', 'base.pth', 0.25, 'l1', wd)
    assert len(calls) == 2
    (tmp_path / 'wd' / 'command.json').unlink()
    steps.prune('p', 'base.pth', 0.2, 'l1', wd)  # unrecorded: reused
    assert len(calls) == 2
    assert 'no record of the command' in capsys.readouterr().out
    # the base config's overrides reach the pruning tool, after the data's
    bench.Steps(['a=1'], rerun=True).prune('p', 'base.pth', 0.2, 'l1', wd,
                                           ['b=2'])
    assert len(calls) == 3
    assert calls[-1][-3:] == ['--cfg-options', 'a=1', 'b=2']


def test_data_of_other_generator_settings_is_refused(bench, tmp_path):
    root = tmp_path / 'data'
    root.mkdir()
    (root / 'val_list_videos.txt').write_text('')
    bench.prepare_data(str(root), 80)  # unrecorded: reused, not generated
    assert not (root / 'videos').exists()
    with open(root / bench.DATA_RECORD, 'w') as f:
        json.dump(bench.data_settings(60), f)
    with pytest.raises(SystemExit, match='generated with other settings'):
        bench.prepare_data(str(root), 80)
    bench.prepare_data(str(root), 60)


def test_a_resumed_run_keeps_the_times_of_the_steps_it_skipped(
        bench, tmp_path):
    assert bench.step_times(str(tmp_path), {'train a': 2.0}) == {
        'train a': 2.0
    }
    (tmp_path / 'summary.json').write_text(
        json.dumps(dict(timing_s={
            'train a': 1.0,
            'train b': 3.0
        })))
    assert bench.step_times(str(tmp_path), {
        'train a': 2.0,
        'train c': 4.0
    }) == {
        'train a': 2.0,
        'train b': 3.0,
        'train c': 4.0
    }
