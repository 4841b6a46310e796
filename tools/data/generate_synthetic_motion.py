# Copyright (c) varedd_mm contributors. All rights reserved.
"""Write the embedded synthetic motion dataset (real H.264 videos + mmaction
video lists). See varedd_mm/datasets/synthetic_motion.py, and
synthetic_motion_hard.py for ``--variant hard`` (ten classes by appearance
or motion, with nuisances).

    python tools/data/generate_synthetic_motion.py data/synthetic_motion
    python tools/data/generate_synthetic_motion.py data/synthetic_motion_hard \
        --variant hard --train-per-class 80
"""
import argparse

from varedd_mm.datasets import (CLASSES, HARD_CLASSES, generate, render_clip,
                                render_hard_clip)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('out_dir')
    parser.add_argument(
        '--variant',
        choices=('basic', 'hard'),
        default='basic',
        help='basic: 3 classes by motion (the demo); hard: 10 classes by '
        'appearance (static) or motion direction and speed')
    parser.add_argument('--train-per-class', type=int, default=80)
    parser.add_argument('--val-per-class', type=int, default=20)
    parser.add_argument('--frames', type=int, default=32)
    parser.add_argument('--size', type=int, default=40)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    classes, render = ((HARD_CLASSES,
                        render_hard_clip) if args.variant == 'hard' else
                       (CLASSES, render_clip))
    paths = generate(args.out_dir, args.train_per_class, args.val_per_class,
                     args.frames, args.size, args.seed, classes, render)
    print(f'{len(classes)} classes x ({args.train_per_class} train + '
          f'{args.val_per_class} val) clips of {args.frames} frames at '
          f'{args.size}x{args.size} -> {args.out_dir}')
    for key, path in paths.items():
        print(f'  {key}: {path}')


if __name__ == '__main__':
    main()
