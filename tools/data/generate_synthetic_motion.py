# Copyright (c) varedd_mm contributors. All rights reserved.
"""Write the embedded synthetic motion dataset (real H.264 videos + mmaction
video lists). See varedd_mm/datasets/synthetic_motion.py.

    python tools/data/generate_synthetic_motion.py data/synthetic_motion
"""
import argparse

from varedd_mm.datasets import CLASSES, generate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--train-per-class', type=int, default=80)
    parser.add_argument('--val-per-class', type=int, default=20)
    parser.add_argument('--frames', type=int, default=32)
    parser.add_argument('--size', type=int, default=40)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    paths = generate(args.out_dir, args.train_per_class, args.val_per_class,
                     args.frames, args.size, args.seed)
    print(f'{len(CLASSES)} classes x ({args.train_per_class} train + '
          f'{args.val_per_class} val) clips of {args.frames} frames at '
          f'{args.size}x{args.size} -> {args.out_dir}')
    for key, path in paths.items():
        print(f'  {key}: {path}')


if __name__ == '__main__':
    main()
