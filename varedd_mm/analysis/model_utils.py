# Copyright (c) varedd_mm contributors. All rights reserved.
"""Helpers the analysis tools share: build a model from a config and run it
on plain tensors (the network only, no data pipeline): clips for
recognizers and detectors, images for segmentors."""
import argparse
import contextlib
import logging
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint


def _is_pretrained_init(init_cfg) -> bool:
    """Whether one ``init_cfg`` dict loads weights from a checkpoint."""
    return isinstance(init_cfg, dict) and (init_cfg.get('type') == 'Pretrained'
                                           or 'checkpoint' in init_cfg)


def without_pretrained(cfg: Config) -> List[str]:
    """Remove, in place, every weight download a config asks for, so that
    its model builds and initialises without network or torchvision.

    Analysis (FLOPs, speed, redundancy) needs the architecture, not the
    ImageNet or Kinetics weights a base config starts training from:
    ``pretrained`` becomes None and ``pretrained2d`` False wherever they
    appear in ``cfg.model`` (mmaction's I3D / TPN backbones, mmseg's
    ``EncoderDecoder``), ``init_cfg`` entries that load a checkpoint are
    dropped (mmdet/mmengine ``type='Pretrained'``), and ``load_from`` is
    cleared.

    Args:
        cfg (Config): The config; changed in place.

    Returns:
        list[str]: The dotted keys that were changed (empty if none).
    """
    changed = []

    def visit(node, path):
        if isinstance(node, dict):
            for key in list(node):
                value, where = node[key], f'{path}.{key}'
                if key == 'pretrained' and value is not None:
                    node[key] = None
                    changed.append(where)
                elif key == 'pretrained2d' and value:
                    node[key] = False
                    changed.append(where)
                elif key == 'init_cfg' and _is_pretrained_init(value):
                    node[key] = None
                    changed.append(where)
                elif key == 'init_cfg' and isinstance(value, list) and any(
                        _is_pretrained_init(v) for v in value):
                    node[key] = [
                        v for v in value if not _is_pretrained_init(v)
                    ]
                    changed.append(where)
                else:
                    visit(value, where)
        elif isinstance(node, (list, tuple)):
            for i, value in enumerate(node):
                visit(value, f'{path}.{i}')

    visit(cfg.model, 'model')
    if cfg.get('load_from'):
        cfg.load_from = None
        changed.append('load_from')
    return changed


@contextlib.contextmanager
def quiet_mmengine(level: int = logging.WARNING) -> Iterator[None]:
    """Raise the level of mmengine's current logger for a block: building
    and initialising a model logs one INFO entry per parameter (hundreds of
    lines) that an analysis tool's user does not need."""
    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(max(level, old))
    try:
        yield
    finally:
        logger.setLevel(old)


def build_model_from_cfg(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` in its default scope (mmaction by default)."""
    import varedd_mm  # noqa: F401
    scope = cfg.get('default_scope', 'mmaction')
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS
        model = MODELS.build(cfg.model)
    return model


def load_weights(model: nn.Module, checkpoint: Optional[str]) -> None:
    """Load a checkpoint (CPU map), or initialise the weights if None."""
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    else:
        model.init_weights()


#: the keys of a config that make its training schedule (and seed)
SCHEDULE_KEYS = ('train_cfg', 'optim_wrapper', 'param_scheduler', 'randomness')


def config_with_options(path: str, options: Sequence[str] = ()) -> Config:
    """The config at ``path`` with ``key=value`` ``options`` merged, read
    as ``tools/train.py --cfg-options`` reads them."""
    cfg = Config.fromfile(path)
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--options', nargs='+', action=DictAction)
        cfg.merge_from_dict(
            parser.parse_args(['--options'] + list(options)).options)
    return cfg


def schedule(cfg: Config) -> dict:
    """The :data:`SCHEDULE_KEYS` entries of ``cfg`` (None where unset)."""
    return {key: cfg.get(key) for key in SCHEDULE_KEYS}


def load_model(config: str,
               checkpoint: Optional[str] = None,
               cfg_options: Optional[dict] = None,
               quiet: bool = True) -> Tuple[Config, nn.Module]:
    """Config file (+ ``--cfg-options``) -> ``(cfg, model)`` with the
    checkpoint's weights (or initialised ones), in eval mode.

    The one way the analysis tools build models: nothing is downloaded
    (:func:`without_pretrained`: a config's ImageNet / Kinetics
    initialisation is dropped; give ``checkpoint`` for trained weights).

    Args:
        config (str): Config file.
        checkpoint (str, optional): Checkpoint to load; None initialises
            the weights (randomly, without pretrained downloads).
        cfg_options (dict, optional): Overrides merged into the config.
        quiet (bool): Keep mmengine's INFO log (one entry per initialised
            parameter) out of the output. Defaults to True.
    """
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    without_pretrained(cfg)
    with quiet_mmengine() if quiet else contextlib.nullcontext():
        model = build_model_from_cfg(cfg)
        load_weights(model, checkpoint)
    model.eval()
    return cfg, model


def build_test_loader(cfg: Config, split: str = 'test'):
    """The config's ``test`` (or ``val``) dataloader, built in its default
    scope."""
    if split not in ('test', 'val'):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    return build_loader(cfg, split)


def build_loader(cfg: Config, split: str):
    """The config's ``{split}_dataloader`` (``'train'``, ``'val'`` or
    ``'test'``), built in its default scope."""
    if split not in ('train', 'val', 'test'):
        raise ValueError(
            f"split must be 'train', 'val' or 'test', got {split!r}")
    from mmengine.runner import Runner
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmaction')):
        return Runner.build_dataloader(cfg[f'{split}_dataloader'])


class ClipModel(nn.Module):
    """A recognizer as a function of clips ``(N, C, T, H, W)`` -> class
    scores, so FLOPs counters and timers see exactly backbone, neck and
    head."""

    def __init__(self, recognizer: nn.Module) -> None:
        super().__init__()
        self.recognizer = recognizer

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        feats, _ = self.recognizer.extract_feat(clips[:, None], test_mode=True)
        return self.recognizer.cls_head(feats)


class ImageModel(nn.Module):
    """A segmentor as a function of images ``(N, C, H, W)`` -> class logits
    at the decode head's resolution (backbone, neck and decode head: what
    its inference runs per image or window, without the final resize)."""

    def __init__(self, segmentor: nn.Module) -> None:
        super().__init__()
        self.segmentor = segmentor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.segmentor(images, mode='tensor')


class DetectionModel(nn.Module):
    """A spatio-temporal detector (mmdet's FastRCNN with mmaction's
    ``AVARoIHead``) as a function of clips ``(N, C, T, H, W)`` -> action
    scores of one box per clip: backbone, RoI extraction and box head, what
    inference runs per clip and proposal. The box is the central person-
    sized box (60 % of the width, 90 % of the height), as a ground-truth
    box stands in for a person detector's proposal."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        n, h, w = clips.shape[0], clips.shape[-2], clips.shape[-1]
        box = clips.new_tensor([0.2 * w, 0.05 * h, 0.8 * w, 0.95 * h])
        rois = torch.cat([
            torch.arange(n, dtype=clips.dtype, device=clips.device)[:, None],
            box.expand(n, 4)
        ],
                         dim=1)
        feats = self.detector.extract_feat(clips)
        metas = [dict(img_shape=(h, w))] * n
        return self.detector.roi_head._bbox_forward(feats, rois,
                                                    metas)['cls_score']


def as_network(model: nn.Module) -> Tuple[nn.Module, int]:
    """The network of a recognizer, segmentor or spatio-temporal detector
    as a function of tensors, and the number of dims of one input after the
    channels (3 for clips ``T, H, W``, 2 for images ``H, W``)."""
    if hasattr(model, 'cls_head'):
        return ClipModel(model), 3
    if hasattr(model, 'decode_head'):
        return ImageModel(model), 2
    if hasattr(model, 'roi_head'):
        return DetectionModel(model), 3
    raise TypeError(f'{type(model).__name__} is neither a recognizer '
                    '(cls_head), a segmentor (decode_head) nor a detector '
                    '(roi_head)')


def _pipeline(cfg: Config, loader: str) -> Optional[list]:
    """The pipeline of ``cfg.<loader>``'s dataset (through dataset
    wrappers), or None."""
    dataset = (cfg.get(loader) or {}).get('dataset')
    while isinstance(dataset, dict):
        if 'pipeline' in dataset:
            return list(dataset['pipeline'])
        dataset = dataset.get('dataset')
    return None


def _hw(size) -> Optional[Tuple[int, int]]:
    """``(H, W)`` of an mmaction size: an int (square) or ``(W, H)``."""
    if isinstance(size, int):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2:
        w, h = size
        if w > 0 and h > 0:
            return int(h), int(w)
        if max(w, h) > 0:  # (-1, S): short side S, aspect unknown
            return int(max(w, h)), int(max(w, h))
    return None


def default_input_shape(cfg: Config, dims: int) -> Tuple[list, str]:
    """The input a config's model is validated at, for FLOPs counting.

    Clips (``dims == 3``): ``clip_len`` of the validation pipeline's frame
    sampler and the size of its last crop or fixed-size resize
    (``CenterCrop``, ``ThreeCrop``, ``RandomCrop``, ``Resize``; a
    keep-ratio resize to short side ``S`` counts as ``S x S``); the test
    pipeline when there is no validation one. Images (``dims == 2``): the
    data preprocessor's ``size``, else ``crop_size``.

    Args:
        cfg (Config): The model's config.
        dims (int): 3 for clips ``T H W``, 2 for images ``H W``.

    Returns:
        tuple: ``([T, H, W] or [H, W], description of where it came
        from)``.

    Raises:
        ValueError: If the config does not fix the input size (e.g. a
            pipeline that keeps the videos' own frame size).
    """
    if dims == 2:
        size = cfg.model.get('data_preprocessor', {}).get('size')
        if size:
            return [int(size[0]), int(size[1])], 'data_preprocessor.size'
        if cfg.get('crop_size'):
            return [int(s) for s in cfg.crop_size], 'crop_size'
        raise ValueError('the config fixes no image size (no '
                         'data_preprocessor.size or crop_size): give one')
    for loader in ('val_dataloader', 'test_dataloader'):
        pipeline = _pipeline(cfg, loader)
        if not pipeline:
            continue
        clip_len, hw, steps = None, None, []
        for step in pipeline:
            kind = step.get('type', '')
            if clip_len is None and 'clip_len' in step:
                clip_len = int(step['clip_len'])
                steps.append(f'{kind} clip_len={clip_len}')
            size = None
            if kind in ('CenterCrop', 'ThreeCrop', 'TenCrop'):
                size = _hw(step.get('crop_size'))
            elif kind == 'RandomCrop':
                size = _hw(step.get('size'))
            elif kind == 'Resize':
                size = _hw(step.get('scale'))
            if size is not None:
                hw = size
                keep_ratio = kind == 'Resize' and min(step['scale']) < 0
                steps.append(f'{kind} to short side {hw[0]}'
                             if keep_ratio else f'{kind} {hw[0]}x{hw[1]}')
        if clip_len is not None and hw is not None:
            name = loader.replace('_dataloader', '')
            return ([clip_len, hw[0],
                     hw[1]], f"{name} pipeline: {', '.join(steps)}")
    raise ValueError('the validation / test pipeline fixes no clip length '
                     'and frame size (a frame sampler with clip_len and a '
                     'crop or fixed-size resize): give the shape')
