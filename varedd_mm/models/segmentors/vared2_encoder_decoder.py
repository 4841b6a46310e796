# Copyright (c) varedd_mm contributors. All rights reserved.
"""mmseg's ``EncoderDecoder`` with the VA-RED² glue."""

from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from torch import Tensor

from varedd_mm.models.vared2_model import VARED2ModelMixin


@MODELS.register_module()
class VARED2EncoderDecoder(VARED2ModelMixin, EncoderDecoder):
    """``EncoderDecoder`` + the efficiency loss + per-image cost records
    (:class:`~varedd_mm.models.vared2_model.VARED2ModelMixin`).

    Training: the loss dict gains ``loss_eff`` and the logged
    ``eff_ratio_expected`` / ``eff_ratio_realised`` next to ``decode.*`` and
    ``aux.*``. Testing: every predicted sample carries ``vared2_gflops``, the
    realised GFLOPs of each forward its image took (one with
    ``test_cfg.mode='whole'``, one per window with ``'slide'``, each with its
    own choices), ``vared2_base_gflops`` (the base model's GFLOPs per
    forward), ``vared2_choices`` and ``vared2_layer_names``.
    :class:`~varedd_mm.evaluation.VARED2EfficiencyMetric` with
    ``row_name='window', sample_name='image'`` reports GFLOPs per image
    (every window counted).

    Args:
        efficiency_loss (dict, optional): Config of the efficiency loss, for
            example ``dict(type='EfficiencyLoss', loss_weight=0.1)``. None
            trains without it (the cost ratios are still logged).
        full_choice_loss (dict, optional): See
            :meth:`VARED2ModelMixin._init_vared2`.
        Others: as ``EncoderDecoder`` (``policy_rank`` needs a per-clip task
            loss, which this model does not define).
    """

    def predict(self, inputs: Tensor, data_samples=None):
        predictions = super().predict(inputs, data_samples)
        # slide inference runs one batch of all images per window
        return self.vared2_attach(
            predictions, sample_major=self.test_cfg.get('mode') != 'slide')

    def vared2_inference_forward(self, data_batch: dict) -> Tensor:
        """The network part of ``predict`` on a *training* batch (for BN
        recalibration): the preprocessor in training mode (training crops
        can differ in size before it pads them; mmseg's test mode refuses
        that), then ``inference`` (whole or slide, as ``test_cfg`` says),
        without resizing the logits back to the original image."""
        data = self.data_preprocessor(data_batch, True)
        inputs = data['inputs']
        # one shape for the padded batch (mmseg warns on differing shapes)
        shape = tuple(inputs.shape[2:])
        metas = [
            dict(
                sample.metainfo,
                img_shape=shape,
                pad_shape=shape,
                ori_shape=shape,
                padding_size=[0, 0, 0, 0]) for sample in data['data_samples']
        ]
        return self.inference(inputs, metas)
