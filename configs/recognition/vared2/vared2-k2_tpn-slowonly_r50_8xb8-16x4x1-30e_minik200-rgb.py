# T3: dynamic TPN-16f, search space 2, fine-tuned from the base TPN-16f
_base_ = ['./vared2-k2_tpn-slowonly_r50_8xb8-8x8x1-30e_minik200-rgb.py']

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
load_from = ('work_dirs/tpn-slowonly_imagenet-pretrained-r50_8xb8-16x4x1-'
             '150e_minik200-rgb/epoch_150.pth')
