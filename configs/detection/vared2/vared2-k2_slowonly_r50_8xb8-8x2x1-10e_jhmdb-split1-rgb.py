# Table 8 of the paper, VA-RED2: the base detector with a dynamic
# SlowOnly-R50 (search space 2), fine-tuned from the base checkpoint with
# the efficiency loss
_base_ = [
    '../../_base_/models/vared2_fastrcnn_slowonly_r50.py',
    '../../_base_/datasets/jhmdb_split1.py',
    'mmaction::_base_/default_runtime.py'
]
custom_imports = dict(imports=['varedd_mm'], allow_failed_imports=False)

model = dict(roi_head=dict(bbox_head=dict(num_classes=21)))
load_from = ('work_dirs/slowonly_kinetics400-pretrained-r50_8xb8-8x2x1-20e_'
             'jhmdb-split1-rgb/epoch_20.pth')
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=10, val_begin=1, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=10, by_epoch=True, begin=0, end=10)
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-5),
    clip_grad=dict(max_norm=5, norm_type=2))
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=2))
# BN statistics under the inference policy before each checkpoint; frame-mAP
# next to the realised GFLOPs per clip (backbone + RoI head)
custom_hooks = [dict(type='VARED2RecalibrateBNHook', num_batches=50)]
val_evaluator = [
    dict(type='MultiSportsMetric', ann_file={{_base_.gt_file}}),
    dict(
        type='VARED2EfficiencyMetric', row_name='clip', sample_name='keyframe')
]
test_evaluator = val_evaluator
