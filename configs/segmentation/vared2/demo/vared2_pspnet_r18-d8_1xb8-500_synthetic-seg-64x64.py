# Demo VA-RED2: the demo base with a dynamic dilated ResNet-18 (search
# space 2: all or half of the output channels of every conv), fine-tuned
# from the base checkpoint for 500 iterations.
_base_ = ['./pspnet_r18-d8_1xb8-1k_synthetic-seg-64x64.py']

model = dict(
    type='VARED2EncoderDecoder',
    # budget on the realised (arg-max) cost of the dynamic convs: with
    # straight-through gates the forward runs the arg-max choice
    efficiency_loss=dict(
        type='EfficiencyLoss', loss_weight=5.0, target=0.6, cost='realised'),
    backbone=dict(
        type='VARED2ResNetV1c',
        # gates start on the full choice: fine-tuning starts at the base
        dynamic_cfg=dict(
            search_space=2,
            gate=dict(
                straight_through=True,
                init_bias_full=1.0,
                normalize_grad=False))))
# where `tools/run_default.py --task segmentation` trains the demo base; a
# base trained with `tools/train.py BASE_CONFIG` is in
# work_dirs/pspnet_r18-d8_1xb8-1k_synthetic-seg-64x64/ instead
load_from = 'work_dirs/demo_seg/base/iter_1000.pth'
# shared weights move gently from the base; the fresh gates learn faster
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'.gate.': dict(lr_mult=20.0)}),
    clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(
        type='CosineAnnealingLR', T_max=500, by_epoch=False, begin=0, end=500)
]
train_cfg = dict(max_iters=500, val_interval=500)
default_hooks = dict(checkpoint=dict(interval=500))
custom_hooks = [
    dict(
        type='VARED2RecalibrateBNHook',
        num_batches=10,
        by_epoch=False,
        interval=500)
]
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(
        type='VARED2EfficiencyMetric', row_name='window', sample_name='image')
]
test_evaluator = val_evaluator
