# T3 base: TPN-8f (SlowOnly-R50, 8x8x1 clips at 224x224) on minik200
_base_ = [
    '../../_base_/models/tpn_slowonly_r50.py',
    '../../_base_/datasets/minik200_224px.py',
    '../../_base_/schedules/sgd_cosine_100e.py',
    '../../_base_/default_runtime.py'
]

model = dict(
    neck=dict(aux_head_cfg=dict(out_channels=200)),
    cls_head=dict(num_classes=200))
train_pipeline = _base_.train_pipeline
val_pipeline = _base_.val_pipeline
test_pipeline = _base_.test_pipeline
train_pipeline[1].update(clip_len=8, frame_interval=8)
val_pipeline[1].update(clip_len=8, frame_interval=8)
test_pipeline[1].update(clip_len=8, frame_interval=8)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
# TPN's schedule: 150 epochs, SGD lr 0.01 at 8 GPUs x 8 clips
train_cfg = dict(max_epochs=150)
optim_wrapper = dict(
    optimizer=dict(lr=0.01), clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5),
    dict(
        type='CosineAnnealingLR',
        T_max=145,
        eta_min=0,
        by_epoch=True,
        begin=5,
        end=150)
]
auto_scale_lr = dict(base_batch_size=64)
