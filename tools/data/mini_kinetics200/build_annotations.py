# Copyright (c) varedd_mm contributors. All rights reserved.
"""Build Mini-Kinetics-200 annotation files from a Kinetics-400 copy.

    python tools/data/mini_kinetics200/build_annotations.py \\
        --train-ids mini_kinetics_200/train_ytid_list.txt \\
        --val-ids mini_kinetics_200/val_ytid_list.txt \\
        --k400-train-list data/kinetics400/kinetics400_train_list_videos.txt \\
        --k400-val-list data/kinetics400/kinetics400_val_list_videos.txt \\
        --k400-label-map data/kinetics400/label_map_k400.txt \\
        --out-dir data/mini_kinetics200

The id lists are the public Mini-Kinetics-200 split files (Xie et al.,
2018), ``train_ytid_list.txt`` and ``val_ytid_list.txt`` of
https://github.com/s9xie/Mini-Kinetics-200. Prints how many listed clips were found and missing per split; the
missing ids are written next to the lists. Exit code 1 if a split misses
more than ``--max-missing`` of its clips (default: any is allowed, all are
reported).
"""
import argparse
import sys

from varedd_mm.datasets.mini_kinetics import build


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--train-ids', required=True)
    parser.add_argument('--val-ids', required=True)
    parser.add_argument('--k400-train-list', required=True)
    parser.add_argument('--k400-val-list', required=True)
    parser.add_argument('--k400-label-map', default=None)
    parser.add_argument('--out-dir', required=True)
    parser.add_argument(
        '--max-missing',
        type=float,
        default=1.0,
        help='fail if a split misses more than this fraction of its ids')
    args = parser.parse_args(argv)
    if not 0 <= args.max_missing <= 1:
        parser.error('--max-missing must be in [0, 1]')
    report = build(args.train_ids, args.val_ids, args.k400_train_list,
                   args.k400_val_list, args.out_dir, args.k400_label_map)
    failed = False
    for split in ('train', 'val'):
        r = report[split]
        print(f"{split}: {r['listed']} listed, {r['found']} found, "
              f"{r['missing']} missing -> {report['paths'][split]} "
              f"(missing ids: {report['paths'][split + '_missing']})")
        if r['listed'] and r['missing'] / r['listed'] > args.max_missing:
            failed = True
    print(f"classes: {report['num_classes']} "
          f"-> {report['paths']['label_map']}")
    if report['num_classes'] != 200:
        print(f"warning: {report['num_classes']} classes found, the full "
              'Mini-Kinetics-200 has 200 (clips of some classes are '
              'missing from the K400 lists)')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
