# Copyright (c) varedd_mm contributors. All rights reserved.
"""Write the embedded synthetic spatio-temporal detection dataset in the
J-HMDB-21 release layout (JHMDB-GT.pkl + Frames/). See
varedd_mm/datasets/synthetic_jhmdb.py; convert it like the real release.

    python tools/data/jhmdb/generate_synthetic_jhmdb.py data/synthetic_jhmdb
    python tools/data/jhmdb/convert_jhmdb.py \\
        data/synthetic_jhmdb/JHMDB-GT.pkl data/synthetic_jhmdb/Frames \\
        data/synthetic_jhmdb --split 1
"""
import argparse
import time

from varedd_mm.datasets.synthetic_jhmdb import (SYNTHETIC_JHMDB_CLASSES,
                                                generate_synthetic_jhmdb)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--videos-per-class', type=int, default=150)
    parser.add_argument(
        '--frames',
        type=int,
        nargs=2,
        default=(16, 22),
        metavar=('MIN', 'MAX'),
        help='frames per video, drawn in [MIN, MAX]')
    parser.add_argument(
        '--size', type=int, nargs=2, default=(64, 96), metavar=('H', 'W'))
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--two-actor-prob',
        type=float,
        default=0.3,
        help='probability that a video has two actors')
    args = parser.parse_args(argv)
    start = time.time()
    try:
        paths = generate_synthetic_jhmdb(
            args.out_dir,
            args.videos_per_class,
            tuple(args.frames),
            tuple(args.size),
            args.seed,
            two_actor_prob=args.two_actor_prob)
    except ValueError as e:
        parser.error(str(e))
    n = args.videos_per_class * len(SYNTHETIC_JHMDB_CLASSES)
    print(f'{len(SYNTHETIC_JHMDB_CLASSES)} classes x '
          f'{args.videos_per_class} videos ({n}) of {args.frames[0]}-'
          f'{args.frames[1]} frames at {args.size[0]}x{args.size[1]}, seed '
          f'{args.seed} -> {args.out_dir} ({time.time() - start:.1f} s)')
    print(f"  classes: {', '.join(SYNTHETIC_JHMDB_CLASSES)}")
    for key, path in paths.items():
        print(f'  {key}: {path}')
    print('  3 splits: each tests on a third of the videos of every class')
    return 0


if __name__ == '__main__':
    main()
