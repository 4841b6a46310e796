# Copyright (c) varedd_mm contributors. All rights reserved.
"""Helpers the analysis tools share: build a model from a config and run it
on plain tensors (the network only, no data pipeline): clips for
recognizers and detectors, images for segmentors."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint


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


def load_model(config: str,
               checkpoint: Optional[str] = None,
               cfg_options: Optional[dict] = None) -> Tuple[Config, nn.Module]:
    """Config file (+ ``--cfg-options``) -> ``(cfg, recognizer)`` with the
    checkpoint's weights (or initialised ones), in eval mode."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = build_model_from_cfg(cfg)
    load_weights(model, checkpoint)
    return cfg, model.eval()


def build_test_loader(cfg: Config):
    """The config's test dataloader, built in its default scope."""
    from mmengine.runner import Runner
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmaction')):
        return Runner.build_dataloader(cfg.test_dataloader)


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
