# Table 8 of the paper, base: FastRCNN with a SlowOnly-R50 backbone on
# J-HMDB-21 split 1, 8x2 clips, from mmaction's Kinetics-400 SlowOnly-R50
# (downloaded by mmengine when the model is initialised; set
# model.init_cfg=None to start from scratch or use load_from instead)
_base_ = [
    '../../_base_/models/fastrcnn_slowonly_r50.py',
    '../../_base_/datasets/jhmdb_split1.py',
    'mmaction::_base_/default_runtime.py'
]
custom_imports = dict(imports=['varedd_mm'], allow_failed_imports=False)

url = ('https://download.openmmlab.com/mmaction/v1.0/recognition/slowonly/'
       'slowonly_imagenet-pretrained-r50_8xb16-4x16x1-steplr-150e_kinetics400-'
       'rgb/slowonly_imagenet-pretrained-r50_8xb16-4x16x1-steplr-150e_'
       'kinetics400-rgb_20220901-e7b65fad.pth')
model = dict(
    init_cfg=dict(type='Pretrained', checkpoint=url),
    roi_head=dict(bbox_head=dict(num_classes=21)))
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=20, val_begin=1, val_interval=2)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=2),
    dict(
        type='MultiStepLR',
        begin=0,
        end=20,
        by_epoch=True,
        milestones=[14, 18],
        gamma=0.1)
]
# 8 GPUs x 8 clips
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-5),
    clip_grad=dict(max_norm=5, norm_type=2))
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=2))
