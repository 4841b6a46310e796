# Copyright (c) varedd_mm contributors. All rights reserved.
"""Re-estimate the BN statistics of a trained VA-RED² checkpoint under its
learned inference policy and write them to a new checkpoint::

    python tools/analysis/recalibrate_bn.py CONFIG CHECKPOINT --out NEW.pth \\
        [--num-batches N] [--seed S] [--cfg-options ...]

It runs the pass ``VARED2RecalibrateBNHook`` runs at the end of training
(:func:`varedd_mm.recalibrate_bn` through the model's inference forward)
on N batches of the config's train dataloader, in one process on
``--device``, with the engine as it is now. Use it on checkpoints trained
before a fix of that pass (see CHANGELOG.md): training itself does not
use the recalibrated statistics, so the weights are the same and only the
running statistics change. Everything but the model's BN statistics is
copied from CHECKPOINT (same keys and dtypes; the checkpoint must match
the config's model key for key); ``meta['vared2_recalibrate_bn']``
records the pass. Test the result with the standard ``tools/test.py
CONFIG NEW.pth``.
"""
import argparse
import inspect
import itertools
import os.path as osp

import torch
from mmengine.config import DictAction
from mmengine.runner import set_random_seed

from varedd_mm.analysis import build_loader, load_model, quiet_mmengine
from varedd_mm.engine.hooks import VARED2RecalibrateBNHook, inference_forward
from varedd_mm.ops import recalibrate_bn


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='the checkpoint\'s config')
    parser.add_argument('checkpoint', help='trained weights')
    parser.add_argument(
        '--out', required=True, help='where to write the new checkpoint')
    parser.add_argument(
        '--num-batches',
        type=int,
        default=None,
        help='training batches of the pass (default: num_batches of the '
        'config\'s VARED2RecalibrateBNHook, else the hook\'s default)')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        help='device of the pass')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='random seed of the batches drawn (order and crops)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides of CONFIG')
    args = parser.parse_args(argv)
    if args.num_batches is not None and args.num_batches < 1:
        parser.error(f'--num-batches must be >= 1, got {args.num_batches}')
    if osp.realpath(args.out) == osp.realpath(args.checkpoint):
        parser.error('--out must differ from CHECKPOINT (the original is '
                     'kept)')
    out_dir = osp.dirname(osp.abspath(args.out))
    if not osp.isdir(out_dir):
        parser.error(f'--out: directory {out_dir} does not exist')
    return args


def hook_batches(cfg) -> int:
    """``num_batches`` of the config's ``VARED2RecalibrateBNHook``, else
    the hook's default."""
    default = inspect.signature(
        VARED2RecalibrateBNHook).parameters['num_batches'].default
    for hook in cfg.get('custom_hooks', None) or []:
        if hook.get('type') == 'VARED2RecalibrateBNHook':
            return hook.get('num_batches', default)
    return default


def read_checkpoint(path: str) -> dict:
    """An mmengine checkpoint (a dict with ``state_dict``) whose statistics
    a recalibration can rewrite; a ``ValueError`` naming the file
    otherwise."""
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    if not isinstance(ckpt, dict) or not isinstance(
            ckpt.get('state_dict'), dict):
        raise ValueError(f'{path}: expected an mmengine checkpoint (a dict '
                         'with a state_dict), as tools/train.py saves')
    if 'ema_state_dict' in ckpt:
        raise ValueError(f'{path} has an ema_state_dict (EMAHook): its '
                         'averaged weights would keep their old statistics; '
                         'not supported')
    return ckpt


def match_keys(saved: dict, own: dict, config: str, checkpoint: str) -> dict:
    """``{checkpoint key: model key}`` (a ``module.`` prefix of a wrapped
    model dropped); a ``ValueError`` unless the two sets of keys are the
    same, so that nothing is left at its initial value or dropped."""
    names = {
        k[len('module.'):] if k.startswith('module.') else k: k
        for k in saved
    }
    missing = sorted(set(own) - set(names))
    unexpected = sorted(set(names) - set(own))
    if missing or unexpected:
        raise ValueError(f'{checkpoint} does not match the model of {config}: '
                         f'missing {missing[:5]} ({len(missing)}), unexpected '
                         f'{unexpected[:5]} ({len(unexpected)})')
    return {saved_key: key for key, saved_key in names.items()}


def main(argv=None):
    args = parse_args(argv)
    ckpt = read_checkpoint(args.checkpoint)
    set_random_seed(args.seed)
    with quiet_mmengine():
        cfg, model = load_model(args.config, args.checkpoint, args.cfg_options)
    keys = match_keys(ckpt['state_dict'], model.state_dict(), args.config,
                      args.checkpoint)
    if 'train_dataloader' not in cfg:
        raise ValueError(f'{args.config} has no train_dataloader: the pass '
                         'draws training batches')
    num = args.num_batches or hook_batches(cfg)
    model.to(args.device)
    batches = itertools.islice(build_loader(cfg, 'train'), num)
    used = recalibrate_bn(model, batches, forward=inference_forward)
    if used < num:
        raise ValueError(f'--num-batches {num}: the train dataloader has '
                         f'only {used} batches')
    own = model.state_dict()
    saved = ckpt['state_dict']  # its keys and dtypes are kept
    ckpt['state_dict'] = {
        k: own[keys[k]].detach().to('cpu', saved[k].dtype)
        for k in saved
    }
    meta = dict(ckpt.get('meta') or {})
    meta['vared2_recalibrate_bn'] = dict(
        source=osp.abspath(args.checkpoint), num_batches=used, seed=args.seed)
    ckpt['meta'] = meta
    torch.save(ckpt, args.out)
    print(f'BN statistics recalibrated on {used} training batches under the '
          f'learned policy: {args.out}')


if __name__ == '__main__':
    main()
