# Cross-check against mmseg's model zoo, VA-RED2: the base with a dynamic
# backbone (search space 2), fine-tuned from the base checkpoint
_base_ = ['./fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py']

model = dict(
    type='VARED2EncoderDecoder',
    pretrained=None,  # starts from the base checkpoint (load_from)
    efficiency_loss=dict(type='EfficiencyLoss', loss_weight=0.5),
    backbone=dict(type='VARED2ResNetV1c', dynamic_cfg=dict(search_space=2)))
# BN statistics under the inference policy before each checkpoint
custom_hooks = [
    dict(
        type='VARED2RecalibrateBNHook',
        num_batches=50,
        by_epoch=False,
        interval=8000)
]
# realised GFLOPs per image (every slide window counted) next to mIoU
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(
        type='VARED2EfficiencyMetric', row_name='window', sample_name='image')
]
test_evaluator = val_evaluator
load_from = ('work_dirs/'
             'fcn_r18-d8_4xb2-80k_cityscapes-512x1024/iter_80000.pth')
