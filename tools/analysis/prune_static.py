# Copyright (c) varedd_mm contributors. All rights reserved.
"""Prune a base recognizer's filters statically to a GFLOPs target (the
baselines of Table 7 of the paper), ready for the standard tools.

    python tools/analysis/prune_static.py CONFIG CHECKPOINT \\
        --target-gflops 6.0 --method l1 --work-dir work_dirs/prune_l1
    python tools/train.py work_dirs/prune_l1/pruned_config.py   # fine-tune
    python tools/test.py work_dirs/prune_l1/pruned_config.py CKPT

Writes ``WORK_DIR/pruned.pth`` (the pruned weights, with the pruned widths
in its meta) and ``WORK_DIR/pruned_config.py`` (CONFIG with the model type
``VARED2PrunedModel`` and ``load_from`` the pruned weights; schedule and
data as in CONFIG: set the fine-tuning schedule there or with
``--cfg-options``). Needs torch-pruning (the ``prune`` extra).
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction

from varedd_mm.analysis import as_network, load_model, quiet_mmengine
from varedd_mm.analysis.model_utils import (build_model_from_cfg,
                                            default_input_shape,
                                            without_pretrained)
from varedd_mm.analysis.prune import METHODS, network_gflops, prune_to_gflops
from varedd_mm.models.pruned import pruned_structure


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='base (static) recognizer config')
    parser.add_argument('checkpoint', help='its trained weights')
    parser.add_argument(
        '--target-gflops',
        type=float,
        required=True,
        help='GFLOPs per clip of the pruned model (e.g. what the VA-RED2 '
        'model realises)')
    parser.add_argument(
        '--method',
        choices=METHODS,
        required=True,
        help='filter criterion: L1 norm, BN scale (network slimming) or '
        'FPGM')
    parser.add_argument(
        '--work-dir', required=True, help='where the outputs are written')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=3,
        default=None,
        metavar=('T', 'H', 'W'),
        help='clip the GFLOPs are counted on; None: the config\'s '
        'validation input')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides of CONFIG (kept in the pruned config)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with quiet_mmengine():
        cfg, model = load_model(args.config, args.checkpoint, args.cfg_options)
    net, dims = as_network(model)
    if dims != 3 or not hasattr(model, 'cls_head'):
        raise ValueError(f'{args.config}: prune_static.py prunes '
                         'recognizers; this model is not one')
    shape = list(args.shape) if args.shape else default_input_shape(cfg, 3)[0]
    example = torch.randn([1, 3] + shape)
    keep = [
        m for m in model.cls_head.modules() if isinstance(m, torch.nn.Linear)
    ]
    full = network_gflops(net, example)
    pruned_net, gflops, ratio = prune_to_gflops(net, example,
                                                args.target_gflops,
                                                args.method, keep)
    pruned = pruned_net.recognizer

    os.makedirs(args.work_dir, exist_ok=True)
    ckpt_path = osp.join(args.work_dir, 'pruned.pth')
    structure = pruned_structure(pruned, model)
    torch.save(
        dict(
            state_dict=pruned.state_dict(),
            meta=dict(
                pruned_structure=structure,
                pruning=dict(
                    config=args.config,
                    checkpoint=args.checkpoint,
                    method=args.method,
                    ratio=ratio,
                    shape=shape,
                    gflops=gflops,
                    unpruned_gflops=full,
                    target_gflops=args.target_gflops))), ckpt_path)

    pruned_cfg = Config.fromfile(args.config)
    if args.cfg_options:
        pruned_cfg.merge_from_dict(args.cfg_options)
    without_pretrained(pruned_cfg)  # the pruned weights come from load_from
    pruned_cfg.model = dict(
        type='VARED2PrunedModel',
        model=pruned_cfg.model.to_dict(),
        structure=ckpt_path)
    pruned_cfg.load_from = ckpt_path
    imports = list((pruned_cfg.get('custom_imports') or {}).get('imports', []))
    if 'varedd_mm' not in imports:
        imports.append('varedd_mm')
    pruned_cfg.custom_imports = dict(
        imports=imports, allow_failed_imports=False)
    cfg_path = osp.join(args.work_dir, 'pruned_config.py')
    pruned_cfg.dump(cfg_path)

    # the written pair rebuilds exactly the pruned network
    with quiet_mmengine():
        rebuilt = build_model_from_cfg(Config.fromfile(cfg_path))
    state = torch.load(ckpt_path, map_location='cpu')['state_dict']
    rebuilt.load_state_dict(state)
    rebuilt.eval()
    pruned.eval()
    with torch.no_grad():
        same = torch.equal(
            as_network(rebuilt)[0](example),
            as_network(pruned)[0](example))
    if not same:
        raise RuntimeError('the written config and checkpoint do not '
                           'rebuild the pruned model')
    params = sum(p.numel() for p in pruned.parameters())
    base_params = sum(p.numel() for p in model.parameters())
    print(f'{args.method} pruning, ratio {ratio:.3f} of every prunable '
          f'layer: {gflops:.3f} GFLOPs per clip ({gflops / full:.3f} of '
          f'{full:.3f}; target {args.target_gflops}) on input {shape}, '
          f'{params / 1e6:.2f} M parameters (of {base_params / 1e6:.2f} M)')
    print(f'wrote {ckpt_path} and {cfg_path} (rebuilt and checked)')
    print(f'fine-tune: python tools/train.py {cfg_path}')
    return 0


if __name__ == '__main__':
    main()
