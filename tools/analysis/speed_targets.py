# Copyright (c) varedd_mm contributors. All rights reserved.
"""Where the speed targets stand in a run of ``benchmark_zoo.sh``::

    python tools/analysis/speed_targets.py OUT_DIR \\
        [--targets r2plus1d=3.2 i3d=2.5 x3d=1.6 tpn=2.3] [--within 0.15] \\
        [--models NAME ...] [--tag TAG] [--against compiled] \\
        [--at-least X] [--out FILE.md] [--json FILE.json]

Reads ``OUT_DIR/<model>[_TAG]_b<batch>[_cl].json`` (what
``tools/analysis/benchmark_zoo.sh`` writes with ``OUT`` and ``TAG``) for
every model of ``--models`` (default: those of ``--targets``) and prints
one row per file, with the verdict of each reading of a speed target
``T`` (``speedup`` is the VA-RED² model's clip/s over the upstream
base's, ``same`` over the same-execution base's, ``base speed-up`` the
same-execution base's over the upstream base's, ``w`` is ``--within``):

- **target**: ``speedup >= T``;
- **rule**: ``same >= (1 - w) * speedup``, "vs same execution within
  ``w`` of vs upstream"; the VA-RED² clip/s cancels, so this is ``base
  speed-up <= 1 / (1 - w)``;
- **both**: target and rule;
- **own gain**: ``same >= (1 - w) * T``, VA-RED²'s gain over the
  same-execution base within ``w`` of the target (what target and rule
  together imply, without bounding the base's execution);

and, per reading, how many rows meet it. ``--against compiled`` takes
the base compiled by ``torch.compile`` as the upstream base instead (runs
with ``COMPILED=1``, ``benchmark.py --compiled-base``): ``speedup`` is
then VA-RED²'s clip/s over the compiled base's, ``base speed-up`` the
same-execution base's over the compiled base's. With ``--at-least X``
the rows are checked against one bound instead, ``speedup >= X`` and
``same >= X`` (verdicts ``speedup_ok`` and ``same_ok``; e.g. ``--models
r2plus1d i3d --tag choice00 --at-least 0.97``: choice (0, 0) no more
than 3 % slower than the base; ``--tag gatecost06 --at-least 1.3``).

A model with no file in ``OUT_DIR`` is an error (the run is incomplete),
as is a file without the figures above.
"""
import argparse
import glob
import json
import os.path as osp
import re
from typing import Dict, List, Optional

#: the speed targets against the upstream base (every gate at (1, 1))
DEFAULT_TARGETS = dict(r2plus1d=3.2, i3d=2.5, x3d=1.6, tpn=2.3)
FIELDS = ('batch', 'base_clips_per_s', 'base_same_clips_per_s',
          'dynamic_clips_per_s', 'speedup', 'speedup_same_execution')


def _target(text: str):
    name, sep, value = text.partition('=')
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9.-]*', name) \
            or number is None or number <= 0:
        raise argparse.ArgumentTypeError(
            f'--targets takes MODEL=SPEEDUP pairs (a model name as in the '
            f'JSON file names, a positive number), got {text!r}')
    return name, number


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        'out_dir', help='the OUT directory of a benchmark_zoo.sh run')
    parser.add_argument(
        '--targets',
        nargs='+',
        type=_target,
        default=list(DEFAULT_TARGETS.items()),
        help='MODEL=SPEEDUP: the target vs the upstream base per model')
    parser.add_argument(
        '--within',
        type=float,
        default=0.15,
        help='how far "vs same execution" may fall below "vs upstream" '
        '(the rule) and below the target (own gain)')
    parser.add_argument(
        '--models',
        nargs='+',
        help='the models to read (default: those of --targets; with the '
        'targets, each needs one)')
    parser.add_argument(
        '--tag', default='', help='the TAG part of the file names')
    parser.add_argument(
        '--against',
        choices=('upstream', 'compiled'),
        default='upstream',
        help='the base the targets are measured against: the upstream base '
        'as mmaction runs it, or the same compiled by torch.compile '
        '(files of benchmark.py --compiled-base)')
    parser.add_argument(
        '--at-least',
        type=float,
        default=None,
        help='check every row against this one bound instead of the '
        'targets (both speed-ups >= it)')
    parser.add_argument('--out', help='also write the table here')
    parser.add_argument('--json', help='also write the rows here')
    args = parser.parse_args(argv)
    if not 0 <= args.within < 1:
        parser.error(f'--within must be in [0, 1), got {args.within}')
    if args.at_least is not None and args.at_least <= 0:
        parser.error(f'--at-least must be > 0, got {args.at_least}')
    if args.tag and not re.fullmatch(r'[A-Za-z0-9_.-]+', args.tag):
        parser.error("--tag must be letters, digits, '_', '.' or '-', "
                     f'got {args.tag!r}')
    if not osp.isdir(args.out_dir):
        parser.error(f'{args.out_dir} is not a directory')
    targets = dict(args.targets)
    if args.models is None:
        args.models = list(targets)
    elif args.at_least is None:
        missing = [m for m in args.models if m not in targets]
        if missing:
            parser.error(f'--models {" ".join(missing)} have no target in '
                         f'--targets ({", ".join(targets)}); give one, or '
                         'use --at-least')
    args.targets = {m: targets.get(m) for m in args.models}
    return args


def read_rows(out_dir: str,
              targets: Dict[str, Optional[float]],
              tag: str = '',
              against: str = 'upstream') -> List[dict]:
    """One row per ``<model>[_tag]_b<batch>[_cl].json`` of every model in
    ``targets`` (model -> target, None with ``--at-least``), in the order
    of ``targets``, batch and layout; ``against='compiled'``: the
    compiled base is the upstream one."""
    prefix = f'_{tag}' if tag else ''
    rows = []
    for model, target in targets.items():
        pattern = re.compile(
            re.escape(f'{model}{prefix}_b') + r'(\d+)(_cl)?\.json$')
        found = []
        for path in glob.glob(osp.join(out_dir, f'{model}{prefix}_b*.json')):
            match = pattern.fullmatch(osp.basename(path))
            if match:
                found.append((int(match.group(1)), bool(match.group(2)), path))
        if not found:
            raise FileNotFoundError(
                f'no {model}{prefix}_b<batch>[_cl].json in {out_dir}: run '
                f'benchmark_zoo.sh with OUT={out_dir}'
                f'{f" TAG={tag}" if tag else ""} for {model}, or leave it '
                'out of --targets')
        for batch, channels_last, path in sorted(found):
            with open(path) as f:
                data = json.load(f)
            results = data.get('rows') if isinstance(data, dict) else None
            if not results or any(k not in results[0] for k in FIELDS):
                raise ValueError(
                    f'{path} is not a benchmark.py result: it needs '
                    f'rows[0] with {", ".join(FIELDS)}')
            if len(results) != 1 or results[0]['batch'] != batch:
                raise ValueError(
                    f'{path}: expected one row of batch {batch} (as '
                    'benchmark_zoo.sh writes), got batches '
                    f'{[r.get("batch") for r in results]}')
            r = results[0]
            if against == 'compiled':
                if 'base_compiled_clips_per_s' not in r:
                    raise ValueError(
                        f'{path} has no compiled base (run benchmark.py with '
                        '--compiled-base, benchmark_zoo.sh with COMPILED=1), '
                        'so --against compiled cannot read it')
                r = dict(
                    r,
                    base_clips_per_s=r['base_compiled_clips_per_s'],
                    speedup=r['speedup_compiled_base'])
            upstream = 'NCHW' if len(data.get('shape') or ()) == 2 else 'NCDHW'
            rows.append(
                dict(
                    model=model,
                    batch=batch,
                    layout='channels-last' if channels_last else upstream,
                    target=target,
                    speedup=r['speedup'],
                    same=r['speedup_same_execution'],
                    base_speedup=(r['base_same_clips_per_s'] /
                                  r['base_clips_per_s']),
                    file=osp.basename(path)))
    return rows


def judge(rows: List[dict], within: float, at_least=None) -> List[str]:
    """Add each reading's verdict to every row; returns the readings."""
    keep = 1 - within
    for row in rows:
        if at_least is not None:
            row['speedup_ok'] = row['speedup'] >= at_least
            row['same_ok'] = row['same'] >= at_least
            continue
        row['target_met'] = row['speedup'] >= row['target']
        row['rule'] = row['same'] >= keep * row['speedup']
        row['both'] = row['target_met'] and row['rule']
        row['own_gain'] = row['same'] >= keep * row['target']
    if at_least is not None:
        return ['speedup_ok', 'same_ok']
    return ['target_met', 'rule', 'both', 'own_gain']


def render(rows: List[dict],
           readings: List[str],
           within: float,
           at_least=None,
           against: str = 'upstream') -> str:
    mark = {True: 'yes', False: 'no'}
    vs = 'vs upstream' if against == 'upstream' else 'vs compiled base'
    if at_least is not None:
        head = (f'| model | batch | layout | {vs} | vs same execution '
                f'| {vs} >= {at_least:g} | vs same >= {at_least:g} |')
    else:
        head = (f'| model | batch | layout | {vs} | target | vs same '
                'execution | base speed-up | target met | rule (base '
                f'speed-up <= {1 / (1 - within):.3f}) | both | own gain '
                f'(vs same >= {1 - within:g} x target) |')
    lines = [head, '|' + '---|' * head.count(' | ') + '---|']
    for row in rows:
        cells = [
            row["model"], row["batch"], row["layout"], f'{row["speedup"]:.2f}x'
        ]
        if at_least is None:
            cells += [
                f'{row["target"]:g}x', f'{row["same"]:.2f}x',
                f'{row["base_speedup"]:.2f}x'
            ]
        else:
            cells.append(f'{row["same"]:.2f}x')
        cells += [mark[row[r]] for r in readings]
        lines.append('| ' + ' | '.join(str(c) for c in cells) + ' |')
    lines.append('')
    for r in readings:
        met = sum(row[r] for row in rows)
        lines.append(f'{r}: {met} of {len(rows)} rows')
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = parse_args(argv)
    rows = read_rows(args.out_dir, args.targets, args.tag, args.against)
    readings = judge(rows, args.within, args.at_least)
    text = render(rows, readings, args.within, args.at_least, args.against)
    print(text, end='')
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(
                dict(
                    out_dir=args.out_dir,
                    tag=args.tag,
                    against=args.against,
                    within=args.within,
                    at_least=args.at_least,
                    rows=rows),
                f,
                indent=2)


if __name__ == '__main__':
    main()
