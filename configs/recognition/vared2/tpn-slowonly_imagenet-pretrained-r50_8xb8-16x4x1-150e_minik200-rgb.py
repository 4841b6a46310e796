# T3 base: TPN-16f (SlowOnly-R50, 16x4x1 clips at 224x224) on minik200; the
# temporal modulation pools 16 -> 1 frame as TPN-8f pools 8 -> 1
_base_ = [
    './tpn-slowonly_imagenet-pretrained-r50_8xb8-8x8x1-150e_minik200-rgb.py'
]

model = dict(
    neck=dict(temporal_modulation_cfg=dict(downsample_scales=(16, 16))))
train_pipeline = _base_.train_pipeline
val_pipeline = _base_.val_pipeline
test_pipeline = _base_.test_pipeline
train_pipeline[1].update(clip_len=16, frame_interval=4)
val_pipeline[1].update(clip_len=16, frame_interval=4)
test_pipeline[1].update(clip_len=16, frame_interval=4)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
