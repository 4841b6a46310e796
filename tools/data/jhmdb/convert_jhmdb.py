# Copyright (c) varedd_mm contributors. All rights reserved.
"""Convert one split of the J-HMDB-21 release (JHMDB-GT.pkl + Frames/) into
mmaction's AVADataset / MultiSportsMetric files. See
varedd_mm/datasets/jhmdb.py and tools/data/jhmdb/README.md.

    python tools/data/jhmdb/convert_jhmdb.py data/jhmdb/JHMDB-GT.pkl \\
        data/jhmdb/Frames data/jhmdb --split 1

Writes videos/<class>/<video>.mp4 (shared by the splits; existing valid
videos are reused) and annotations/jhmdb_split<N>_{train,val}.csv,
_proposals_{train,val}.pkl, _GT.pkl, _summary.json, jhmdb_label_map.txt.
Without --proposals the proposals are the ground-truth boxes (score 1.0).
"""
import argparse

from varedd_mm.datasets.jhmdb import convert_jhmdb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('gt_file', help='the release\'s JHMDB-GT.pkl')
    parser.add_argument(
        'frames_dir', help='the release\'s Frames/<class>/<video>/%%05d.png')
    parser.add_argument('out_dir')
    parser.add_argument('--split', type=int, default=1, choices=(1, 2, 3))
    parser.add_argument(
        '--train-stride',
        type=int,
        default=1,
        help='keep every k-th annotated frame of each train tube (val keeps '
        'all)')
    parser.add_argument(
        '--proposals',
        default=None,
        help='pickle {"<class>/<video>,<frame:04d>": (k, 5) array x1 y1 x2 '
        'y2 score} (frame 1-based, optional .mp4 after the video name, '
        'boxes normalised to [0, 1]; (k, 4) = score 1). Default: the '
        'ground-truth boxes')
    parser.add_argument(
        '--proposals-pixels',
        action='store_true',
        help='the --proposals boxes are in pixels (normalised here)')
    parser.add_argument('--frame-tmpl', default='{:05d}.png')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='encode every video again (default: reuse valid ones)')
    parser.add_argument(
        '--crf', type=int, default=10, help='x264 quality (lower = better)')
    args = parser.parse_args(argv)
    if args.train_stride < 1:
        parser.error('--train-stride must be >= 1')
    if args.proposals_pixels and not args.proposals:
        parser.error('--proposals-pixels needs --proposals')
    try:
        convert_jhmdb(
            args.gt_file,
            args.frames_dir,
            args.out_dir,
            split=args.split,
            train_stride=args.train_stride,
            proposals=args.proposals,
            proposals_pixels=args.proposals_pixels,
            frame_tmpl=args.frame_tmpl,
            overwrite=args.overwrite,
            crf=args.crf)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    return 0


if __name__ == '__main__':
    main()
