# Base R(2+1)D-18 on the embedded synthetic motion dataset (CPU demo),
# trained from scratch. README command 1 runs it (tools/run_default.py).
_base_ = [
    '../../../_base_/models/r2plus1d_r18.py',
    '../../../_base_/datasets/synthetic_motion.py',
    '../../../_base_/default_runtime.py'
]

model = dict(
    backbone=dict(norm_cfg=dict(type='BN3d', requires_grad=True, eps=1e-3)),
    cls_head=dict(num_classes=3, dropout_ratio=0.2))
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=20, val_begin=1, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=20, by_epoch=True, begin=0, end=20)
]
default_hooks = dict(
    checkpoint=dict(interval=10, max_keep_ckpts=1, save_best=None),
    logger=dict(interval=10))
randomness = dict(seed=0)
