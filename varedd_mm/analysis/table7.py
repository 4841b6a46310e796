# Copyright (c) varedd_mm contributors. All rights reserved.
"""The accuracy-against-GFLOPs plot of Table 7 of the paper (VA-RED²
against static pruning), shared by ``tools/run_hard_benchmark.py`` (one
run) and ``tools/analysis/compare_runs.py`` (the means of several)."""
from typing import Dict, List, Tuple

Points = List[Tuple[float, float]]


def plot_accuracy_vs_gflops(
        summary: dict,
        path: str,
        title: str = 'Harder synthetic benchmark (CPU)') -> Dict[str, Points]:
    """Top-1 against GFLOPs per clip: the base (and its fine-tuned
    reference), VA-RED² at each budget (a line, each point labelled with
    its budget) and each pruning method (a line per method).

    Args:
        summary (dict): ``base`` (``top1``, ``gflops``), optionally
            ``base_finetuned`` (``top1``), ``vared2`` (a list of ``budget``,
            ``top1``, ``gflops``) and ``pruned`` (a list of ``method``,
            ``top1``, ``gflops``); top-1 as a fraction.
        path (str): The PNG to write.
        title (str): The plot's title.

    Returns:
        dict: The plotted points per legend label, ``(GFLOPs, top-1 %)``,
        each line in the order drawn (by GFLOPs).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    drawn = {}
    base = summary['base']
    stars = [('base R(2+1)D-18', base['top1'], dict(color='k'))]
    if 'base_finetuned' in summary:
        stars.append(('base, fine-tuned with the same schedule',
                      summary['base_finetuned']['top1'],
                      dict(facecolors='none', edgecolors='k')))
    for label, top1, style in stars:
        drawn[label] = [(base['gflops'], 100 * top1)]
        ax.scatter(
            *zip(*drawn[label]),
            marker='*',
            s=150,
            label=label,
            zorder=3,
            **style)
    dyn = sorted(summary['vared2'], key=lambda r: r['gflops'])
    drawn['VA-RED²'] = [(r['gflops'], 100 * r['top1']) for r in dyn]
    if dyn:
        ax.plot(*zip(*drawn['VA-RED²']), 'o-', color='C3', label='VA-RED²')
    for r, point in zip(dyn, drawn['VA-RED²']):
        ax.annotate(
            f"{r['budget']:g}",
            point,
            textcoords='offset points',
            xytext=(4, 4),
            fontsize=7)
    methods = sorted({r['method'] for r in summary['pruned']})
    for i, method in enumerate(methods):
        label = f'{method} pruning'
        drawn[label] = sorted((r['gflops'], 100 * r['top1'])
                              for r in summary['pruned']
                              if r['method'] == method)
        ax.plot(*zip(*drawn[label]), 's--', color=f'C{i}', label=label)
    ax.set_xlabel('GFLOPs per clip (8×32×32, realised)')
    ax.set_ylabel('top-1 (%)')
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return drawn
