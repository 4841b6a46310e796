# Copyright (c) varedd_mm contributors. All rights reserved.
"""mmdet's ``FastRCNN`` (mmaction's spatio-temporal detectors: a video
backbone, ``AVARoIHead`` on precomputed proposals) with the VA-RED² glue."""

from mmdet.models.detectors import FastRCNN
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from torch import Tensor

from varedd_mm.models.vared2_model import VARED2ModelMixin


@MODELS.register_module()
class VARED2FastRCNN(VARED2ModelMixin, FastRCNN):
    """``FastRCNN`` + the efficiency loss + per-clip cost records
    (:class:`~varedd_mm.models.vared2_model.VARED2ModelMixin`), for a
    dynamic video backbone such as ``mmaction.VARED2ResNet3dSlowOnly``.

    Training: the loss dict gains ``loss_eff`` and the logged
    ``eff_ratio_expected`` / ``eff_ratio_realised``. Testing: every
    predicted sample carries ``vared2_gflops`` (realised GFLOPs of its clip,
    with its own choices; the RoI head's layers are counted as the average
    over the clips of the batch), ``vared2_base_gflops``,
    ``vared2_choices`` and ``vared2_layer_names``.

    Args:
        efficiency_loss (dict, optional): Config of the efficiency loss, for
            example ``dict(type='EfficiencyLoss', loss_weight=0.1)``. None
            trains without it (the cost ratios are still logged).
        full_choice_loss (dict, optional): See
            :meth:`VARED2ModelMixin._init_vared2`.
        Others: as ``FastRCNN`` (``policy_rank`` needs a per-clip task
            loss, which this model does not define).
    """

    def predict(self, batch_inputs: Tensor, batch_data_samples, **kwargs):
        predictions = super().predict(batch_inputs, batch_data_samples,
                                      **kwargs)
        return self.vared2_attach(predictions, rows_per_sample=1)

    def vared2_inference_forward(self, data_batch: dict) -> Tensor:
        """The network part of ``predict`` on a *training* batch (for BN
        recalibration): backbone (and neck) on the clips, then the RoI
        head's box forward on each clip's proposals, for every clip of the
        batch at once (``AVARoIHead.predict`` takes one clip per batch),
        without the post-processing of the boxes."""
        data = self.data_preprocessor(data_batch, False)
        samples = data['data_samples']
        x = self.extract_feat(data['inputs'])
        rois = bbox2roi([sample.proposals.bboxes for sample in samples])
        return self.roi_head._bbox_forward(
            x, rois, [sample.metainfo for sample in samples])['cls_score']
