# Demo VA-RED2: the demo base detector with a dynamic backbone (search
# space 2), fine-tuned from the base checkpoint for 1 epoch
# (tools/run_default.py --task detection trains the base there).
_base_ = ['./slowonly_r18_1xb8-8x2x1-5e_synthetic-jhmdb-rgb.py']

model = dict(
    type='VARED2FastRCNN',
    # budget on the realised (arg-max) cost: with straight-through gates
    # the forward runs the arg-max choice
    efficiency_loss=dict(
        type='EfficiencyLoss', loss_weight=5.0, target=0.6, cost='realised'),
    backbone=dict(
        type='mmaction.VARED2ResNet3dSlowOnly',
        # gates start on the full choice: fine-tuning starts at the base
        dynamic_cfg=dict(
            search_space=2,
            gate=dict(
                straight_through=True,
                init_bias_full=1.0,
                normalize_grad=False))))
load_from = 'work_dirs/demo_det/base/epoch_5.pth'
train_cfg = dict(max_epochs=1, val_begin=1, val_interval=1)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'.gate.': dict(lr_mult=20.0)}),
    clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=1, by_epoch=True, begin=0, end=1)
]
default_hooks = dict(checkpoint=dict(interval=1))
custom_hooks = [dict(type='VARED2RecalibrateBNHook', num_batches=10)]
val_evaluator = [
    dict(type='MultiSportsMetric', ann_file={{_base_.gt_file}}),
    dict(
        type='VARED2EfficiencyMetric', row_name='clip', sample_name='keyframe')
]
test_evaluator = val_evaluator
