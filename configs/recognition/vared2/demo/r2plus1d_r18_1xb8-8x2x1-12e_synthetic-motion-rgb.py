# Base R(2+1)D-18 on the embedded synthetic motion dataset (CPU demo),
# trained from scratch. README command 1 runs it (tools/run_default.py).
_base_ = [
    '../../../_base_/models/r2plus1d_r18.py',
    '../../../_base_/datasets/synthetic_motion.py',
    '../../../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(norm_cfg=dict(type='BN3d', requires_grad=True, eps=1e-3)),
    cls_head=dict(num_classes=6, dropout_ratio=0.2))
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=12, val_begin=1, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.2, by_epoch=True, begin=0, end=1),
    dict(type='CosineAnnealingLR', T_max=11, by_epoch=True, begin=1, end=12)
]
default_hooks = dict(
    checkpoint=dict(interval=4, max_keep_ckpts=1, save_best=None),
    logger=dict(interval=10))
randomness = dict(seed=0)
