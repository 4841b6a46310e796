# Copyright (c) varedd_mm contributors. All rights reserved.
"""Test a checkpoint from an OpenMMLab config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--dump FILE]
        [--fuse-conv-bn [--channels-last]] [--cfg-options k=v ...]
        [--launcher {none,pytorch,slurm,mpi}]

With a VA-RED² recognizer and ``VARED2EfficiencyMetric`` in the test
evaluator, the printed metrics include the realised GFLOPs per view/video,
the base model's GFLOPs and the share of full-cost decisions; the per-layer
choice shares and per-class GFLOPs go to the metric's ``out_file`` (by
default ``<work_dir>/vared2_efficiency.json``).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import varedd_mm  # noqa: F401  (compat fixes + registration)


def parse_args():
    parser = argparse.ArgumentParser(description='Test a checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument(
        '--dump', type=str, help='dump predictions to a pickle file')
    parser.add_argument(
        '--fuse-conv-bn',
        action='store_true',
        help='test the fused inference model (BN folded into the convs; '
        'VARED2FastInferenceHook)')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='with --fuse-conv-bn: lay the model and its inputs out '
        'channels-last')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value (xxx=yyy format)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if args.channels_last and not args.fuse_conv_bn:
        parser.error('--channels-last goes with --fuse-conv-bn')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.setdefault('default_scope', 'mmaction')
    cfg.load_from = args.checkpoint
    evaluators = cfg.test_evaluator
    evaluators = evaluators if isinstance(evaluators, list) else [evaluators]
    for ev in evaluators:
        if ev.get(
                'type') == 'VARED2EfficiencyMetric' and not ev.get('out_file'):
            ev['out_file'] = osp.join(cfg.work_dir, 'vared2_efficiency.json')
    if args.dump is not None:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise ValueError('--dump must be a .pkl or .pickle file, got '
                             f'{args.dump}')
        evaluators.append(dict(type='DumpResults', out_file_path=args.dump))
    cfg.test_evaluator = evaluators
    if args.fuse_conv_bn:
        hooks = list(cfg.get('custom_hooks', None) or [])

        def name(hook):  # a config dict (a registered name, maybe
            # scoped, or a class) or a hook instance
            if not isinstance(hook, dict):
                return type(hook).__name__
            t = hook.get('type')
            return getattr(t, '__name__', str(t)).split('.')[-1]

        if any(name(h) == 'VARED2FastInferenceHook' for h in hooks):
            raise ValueError('--fuse-conv-bn: the config already has a '
                             'VARED2FastInferenceHook in custom_hooks')
        hooks.append(
            dict(
                type='VARED2FastInferenceHook',
                channels_last=args.channels_last))
        cfg.custom_hooks = hooks
    runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
