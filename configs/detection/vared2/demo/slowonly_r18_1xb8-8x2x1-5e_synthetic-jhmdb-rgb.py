# Demo base: FastRCNN with a small SlowOnly (ResNet-18 blocks, 16 base
# channels, 3x3x3 convs in every stage, from scratch: nothing to download)
# on the embedded synthetic J-HMDB-layout dataset (64x96 videos), on the
# CPU. The J-HMDB configs use SlowOnly-R50 on 8x256 clips.
_base_ = [
    '../../../_base_/models/fastrcnn_slowonly_r50.py',
    '../../../_base_/datasets/synthetic_jhmdb.py',
    'mmaction::_base_/default_runtime.py'
]
custom_imports = dict(imports=['varedd_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(depth=18, base_channels=16, inflate=(1, 1, 1, 1)),
    roi_head=dict(
        bbox_roi_extractor=dict(output_size=4),
        bbox_head=dict(
            in_channels=128, num_classes=5, topk=(1, 3), dropout_ratio=0.2)))
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=5, val_begin=5, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=5, by_epoch=True, begin=0, end=5)
]
default_hooks = dict(
    checkpoint=dict(interval=5, max_keep_ckpts=1), logger=dict(interval=10))
randomness = dict(seed=0)
