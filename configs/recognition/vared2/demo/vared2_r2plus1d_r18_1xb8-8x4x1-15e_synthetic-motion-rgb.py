# Dynamic R(2+1)D-18 (search space 2) fine-tuned from the demo base model.
_base_ = [
    '../../../_base_/models/vared2_r2plus1d_r18.py',
    '../../../_base_/datasets/synthetic_motion.py',
    '../../../_base_/vared2_runtime.py'
]

model = dict(
    # budget on the realised (arg-max) cost: with straight-through gates the
    # forward runs the arg-max choice, so that is the cost to hold to 0.65
    efficiency_loss=dict(
        type='EfficiencyLoss', loss_weight=5.0, target=0.65, cost='realised'),
    backbone=dict(
        norm_cfg=dict(type='BN3d', requires_grad=True, eps=1e-3),
        # straight-through: training computes what inference computes (the
        # arg-max choice), with the gradient of the expectation; the gates
        # start on the full choice, so fine-tuning starts at the base model
        dynamic_cfg=dict(
            search_space=2,
            # AdamW already normalises gradient scales; keep the raw task
            # gradient so it stays comparable to the efficiency loss's
            gate=dict(
                straight_through=True,
                init_bias_full=1.0,
                normalize_grad=False))),
    cls_head=dict(num_classes=3, dropout_ratio=0.2))
# where tools/run_default.py trains the demo base (README command 1); a base
# trained with `tools/train.py BASE_CONFIG` is in
# work_dirs/r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-rgb/ instead
load_from = 'work_dirs/demo/base/epoch_20.pth'
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=15, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# shared weights move gently from the base; the fresh gates learn faster
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'.gate.': dict(lr_mult=20.0)}),
    clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=15, by_epoch=True, begin=0, end=15)
]
default_hooks = dict(
    checkpoint=dict(interval=5, max_keep_ckpts=1, save_best=None),
    logger=dict(interval=10))
custom_hooks = [
    dict(type='VARED2RecalibrateBNHook', num_batches=15, interval=5)
]
randomness = dict(seed=0)
