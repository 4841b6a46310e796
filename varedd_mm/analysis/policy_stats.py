# Copyright (c) varedd_mm contributors. All rights reserved.
"""Statistics and plots of the policies a VA-RED2 model took on a test set.

Input: the predictions ``tools/test.py --dump`` writes for a
``VARED2Recognizer3D``; each sample carries ``vared2_choices``
``(layers, views, 2)``, ``vared2_gflops`` ``(views,)``,
``vared2_base_gflops``, ``vared2_layer_names`` and ``gt_label``.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np

REQUIRED = ('vared2_choices', 'vared2_gflops', 'vared2_base_gflops',
            'vared2_layer_names', 'gt_label')


def _np(value) -> np.ndarray:
    if hasattr(value, 'detach'):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def policy_statistics(predictions: Sequence[dict],
                      class_names: Optional[Sequence[str]] = None) -> dict:
    """Shares of each choice per layer (overall and per class) and GFLOPs.

    Args:
        predictions (Sequence[dict]): Dumped test predictions.
        class_names (Sequence[str], optional): Names of the labels.

    Returns:
        dict: ``layer_names``; ``choices`` (``'(p_t, p_c)'`` strings);
        ``share`` ``{layer: {choice: share of views}}``;
        ``share_by_class`` ``{class: {layer: {choice: share}}}``;
        ``gflops_by_class`` ``{class: [per-view GFLOPs]}``; ``base_gflops``;
        ``num_videos``; ``num_views``.
    """
    if not predictions:
        raise ValueError('no predictions to analyse')
    missing = [k for k in REQUIRED if k not in predictions[0]]
    if missing:
        raise KeyError(f'predictions lack {missing}: dump them with '
                       '`tools/test.py CONFIG CKPT --dump FILE.pkl` from a '
                       'VARED2Recognizer3D config')
    names = list(predictions[0]['vared2_layer_names'])
    base = float(predictions[0]['vared2_base_gflops'])
    gflops: Dict[int, List[float]] = {}
    labels, stacks = [], []
    for i, p in enumerate(predictions):
        if list(p['vared2_layer_names']) != names:
            raise ValueError(f'prediction {i} has other dynamic layers than '
                             'prediction 0: mixed models in one dump')
        choices = _np(p['vared2_choices']).astype(np.int64)
        if choices.ndim != 3 or choices.shape[0] != len(names):
            raise ValueError(f'prediction {i}: vared2_choices must be '
                             f'(layers={len(names)}, views, 2), got '
                             f'{choices.shape}')
        label = int(_np(p['gt_label']).reshape(-1)[0])
        if class_names is not None and not 0 <= label < len(class_names):
            raise ValueError(f'prediction {i} has label {label}, outside the '
                             f'{len(class_names)} class names given')
        labels.append(np.full(choices.shape[1], label))
        stacks.append(choices)
        gflops.setdefault(label, []).extend(
            _np(p['vared2_gflops']).reshape(-1).astype(float).tolist())
    # every view of every video: (layers, views) choice indices
    allc = np.concatenate(stacks, axis=1)
    view_labels = np.concatenate(labels)
    pairs, codes = np.unique(allc.reshape(-1, 2), axis=0, return_inverse=True)
    choice_list = [(int(t), int(c)) for t, c in pairs]
    codes = codes.reshape(allc.shape[:2])
    layer_idx = np.arange(len(names))[:, None]

    def histogram(columns):
        hist = np.zeros((len(names), len(choice_list)))
        np.add.at(hist, (np.broadcast_to(
            layer_idx, codes[:, columns].shape), codes[:, columns]), 1)
        return hist

    total = histogram(slice(None))
    by_class = {
        int(k): histogram(view_labels == k)
        for k in np.unique(view_labels)
    }

    def shares(hist):
        frac = hist / hist.sum(axis=1, keepdims=True)
        return OrderedDict((names[i],
                            OrderedDict((str(choice_list[k]), float(frac[i,
                                                                         k]))
                                        for k in range(len(choice_list))))
                           for i in range(len(names)))

    def cls(label):
        return class_names[label] if class_names is not None else str(label)

    return dict(
        layer_names=names,
        choices=[str(c) for c in choice_list],
        share=shares(total),
        share_by_class=OrderedDict(
            (cls(k), shares(by_class[k])) for k in sorted(by_class)),
        gflops_by_class=OrderedDict(
            (cls(k), gflops[k]) for k in sorted(gflops)),
        base_gflops=base,
        num_videos=len(predictions),
        num_views=int(total[0].sum()))


def plot_policy(stats: dict, out_dir: str) -> List[str]:
    """Write the policy figures as PNG files; return their paths.

    * ``policy_layers.png``: share of each choice per layer (all views).
    * ``policy_full_share_by_class.png``: share of views at the full choice
      ``(0, 0)`` per layer and class.
    * ``gflops_by_class.png``: histogram of the realised GFLOPs per view,
      per class, with the base model's GFLOPs.
    """
    import os
    import os.path as osp

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    names = stats['layer_names']
    short = [
        n[len('backbone.'):] if n.startswith('backbone.') else n for n in names
    ]
    short = [n[:-len('.conv')] if n.endswith('.conv') else n for n in short]
    paths = []

    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(names)), 4))
    bottom = np.zeros(len(names))
    for choice in stats['choices']:
        vals = np.array([stats['share'][n][choice] for n in names])
        ax.bar(range(len(names)), vals, bottom=bottom, label=choice)
        bottom += vals
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(short, rotation=70, fontsize=7)
    ax.set_ylabel('share of views')
    ax.set_title('choice (p_t, p_c) per dynamic layer')
    ax.legend(fontsize=7, title='choice')
    fig.tight_layout()
    paths.append(osp.join(out_dir, 'policy_layers.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    classes = list(stats['share_by_class'])
    full = '(0, 0)'
    grid = np.array(
        [[stats['share_by_class'][c][n].get(full, 0.0) for c in classes]
         for n in names])
    fig, ax = plt.subplots(
        figsize=(max(4, 0.8 * len(classes) + 3), 0.3 * len(names) + 1.5))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap='viridis', aspect='auto')
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(short, fontsize=7)
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=45, fontsize=7)
    ax.set_title('share of views at the full choice (0, 0)')
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    paths.append(osp.join(out_dir, 'policy_full_share_by_class.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    top = max([stats['base_gflops']] +
              [max(v) for v in stats['gflops_by_class'].values()])
    bins = np.linspace(0, 1.05 * top, 43)
    for cls, vals in stats['gflops_by_class'].items():
        ax.hist(
            vals, bins=bins, alpha=0.5, label=f'{cls} ({np.mean(vals):.3f})')
    ax.axvline(stats['base_gflops'], color='k', linestyle='--', label='base')
    ax.set_xlabel('GFLOPs per view (multiply-adds / 1e9)')
    ax.set_ylabel('views')
    ax.legend(fontsize=7)
    fig.tight_layout()
    paths.append(osp.join(out_dir, 'gflops_by_class.png'))
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths
