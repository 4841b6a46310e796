# Copyright (c) varedd_mm contributors. All rights reserved.
"""Plot the policies a VA-RED2 model took on a test set.

    python tools/test.py CONFIG CKPT --dump work_dirs/preds.pkl
    python tools/analysis/plot_policy.py work_dirs/preds.pkl \\
        [--out-dir work_dirs/policy] [--label-map data/label_map.txt]

Writes ``policy_layers.png`` (share of each choice per dynamic layer),
``policy_full_share_by_class.png`` (share of views at the full choice per
layer and class), ``gflops_by_class.png`` (realised GFLOPs per view, per
class, against the base model) and ``policy_stats.json`` (the numbers
behind the figures).
"""
import argparse
import json
import os
import os.path as osp
import pickle

from varedd_mm.analysis.policy_stats import plot_policy, policy_statistics


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('predictions', help='pickle from tools/test.py --dump')
    parser.add_argument('--out-dir', default=None)
    parser.add_argument(
        '--label-map',
        default=None,
        help='text file, one class name a line (line i: label i)')
    return parser.parse_args()


def main():
    args = parse_args()
    with open(args.predictions, 'rb') as f:
        preds = pickle.load(f)
    names = None
    if args.label_map:
        with open(args.label_map) as f:
            names = [line.strip() for line in f if line.strip()]
    stats = policy_statistics(preds, names)
    out_dir = args.out_dir or osp.join(
        osp.dirname(osp.abspath(args.predictions)), 'policy')
    os.makedirs(out_dir, exist_ok=True)
    paths = plot_policy(stats, out_dir)
    with open(osp.join(out_dir, 'policy_stats.json'), 'w') as f:
        json.dump(stats, f, indent=2)
    print(f"{stats['num_videos']} videos, {stats['num_views']} views, "
          f"{len(stats['layer_names'])} dynamic layers; base "
          f"{stats['base_gflops']:.3f} GFLOPs per view")
    for cls, vals in stats['gflops_by_class'].items():
        print(f'  {cls}: {sum(vals) / len(vals):.3f} GFLOPs per view')
    for p in paths + [osp.join(out_dir, 'policy_stats.json')]:
        print('written', p)


if __name__ == '__main__':
    main()
