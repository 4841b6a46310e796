# VA-RED² on the harder synthetic benchmark with a policy that adapts to
# the clip: the layers reduce time only (dynamic_cfg.dims), and before each
# training step the model also runs every clip at the full and at the
# reduced choice without gradients; each gate is trained to order the
# clips of the batch by what the reduction costs them and to reduce the
# cheaper half (policy_rank: ranking weight 1, labels at split=0.5 with
# 0.3 of its weight; docs/policy.md, "Counterfactual ranking" and "Labels
# as well as order"). 12 epochs from the same base as the 4-epoch config,
# budget 0.7. Each step costs two more forwards without gradients.
# tools/run_hard_benchmark.py --vared2-config <this file> --budgets 0.7
# runs it against static pruning with the same schedule.
_base_ = ['./vared2_r2plus1d_r18_1xb8-8x4x1-4e_synthetic-motion-hard-rgb.py']

model = dict(
    backbone=dict(dynamic_cfg=dict(dims=('temporal', ))),
    efficiency_loss=dict(target=0.7),
    policy_rank=dict(loss_weight=1.0, split=0.5, split_weight=0.3))
train_cfg = dict(max_epochs=12, val_interval=12)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=12, by_epoch=True, begin=0, end=12)
]
default_hooks = dict(checkpoint=dict(interval=12))
custom_hooks = [
    dict(type='VARED2RecalibrateBNHook', num_batches=15, interval=12)
]
