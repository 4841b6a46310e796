# Mini-Kinetics-200, 8x8x1 clips at 224x224 (TPN-8f)
_base_ = ['./minik200_224px.py']

train_pipeline = _base_.train_pipeline
val_pipeline = _base_.val_pipeline
test_pipeline = _base_.test_pipeline
train_pipeline[1].update(clip_len=8, frame_interval=8)
val_pipeline[1].update(clip_len=8, frame_interval=8)
test_pipeline[1].update(clip_len=8, frame_interval=8)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
