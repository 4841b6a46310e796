# Table 11 of the paper, VA-RED2: the base with a dynamic backbone (search
# space 2: all or half of the output channels of every conv), fine-tuned
# from the base checkpoint with the efficiency loss
_base_ = ['./pspnet_r18-d8_4xb2-100k_ade20k-512x512.py']

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
        interval=10000)
]
# realised GFLOPs per image (every slide window counted) next to mIoU
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(
        type='VARED2EfficiencyMetric', row_name='window', sample_name='image')
]
test_evaluator = val_evaluator
load_from = ('work_dirs/'
             'pspnet_r18-d8_4xb2-100k_ade20k-512x512/iter_100000.pth')
