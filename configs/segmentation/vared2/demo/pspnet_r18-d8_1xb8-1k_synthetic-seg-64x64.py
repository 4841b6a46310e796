# Demo base: PSPNet on the dilated ResNet-18 of Table 11 of the paper,
# trained from scratch (nothing to download) on the embedded synthetic
# segmentation dataset, 1000 iterations of 8 images on the CPU.
_base_ = [
    '../../../_base_/models/pspnet_r18-d8.py',
    '../../../_base_/datasets/synthetic_seg.py',
    'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['varedd_mm'], allow_failed_imports=False)

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(64, 64)),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(num_classes=8, norm_cfg=norm_cfg),
    auxiliary_head=dict(num_classes=8, norm_cfg=norm_cfg))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=1000,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1000, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=1000,
        max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
