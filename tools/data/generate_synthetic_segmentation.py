# Copyright (c) varedd_mm contributors. All rights reserved.
"""Write the embedded synthetic segmentation dataset (ADE20K layout and
labels, for mmseg's ADE20KDataset). See
varedd_mm/datasets/synthetic_segmentation.py.

    python tools/data/generate_synthetic_segmentation.py data/synthetic_seg
"""
import argparse
import time

from varedd_mm.datasets.synthetic_segmentation import (SEG_CLASSES,
                                                       ade20k_values, generate)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    start = time.time()
    try:
        paths = generate(args.out_dir, args.num_train, args.num_val, args.size,
                         args.seed)
    except ValueError as e:
        parser.error(str(e))
    print(f'{args.num_train} train + {args.num_val} val images of '
          f'{args.size}x{args.size}, {len(SEG_CLASSES)} classes, seed '
          f'{args.seed} -> {args.out_dir} ({time.time() - start:.1f} s)')
    for key, path in paths.items():
        print(f'  {key}: {path}')
    values = ', '.join(f'{name}={value}'
                       for name, value in ade20k_values().items())
    print(f'  annotation values (ADE20K index + 1; 0 = unlabeled): {values}')
    print(f'  config: type=\'ADE20KDataset\', data_root={args.out_dir!r}, '
          f'metainfo=dict(classes={SEG_CLASSES})')


if __name__ == '__main__':
    main()
