# Table 1 of the paper: 8-frame clips, search space 2
_base_ = ['./vared2-k2_r2plus1d_r18_8xb16-16x2x1-30e_minik200-rgb.py']

train_pipeline = _base_.train_pipeline
val_pipeline = _base_.val_pipeline
test_pipeline = _base_.test_pipeline
train_pipeline[1].update(clip_len=8, frame_interval=4)
val_pipeline[1].update(clip_len=8, frame_interval=4)
test_pipeline[1].update(clip_len=8, frame_interval=4)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
load_from = ('work_dirs/r2plus1d_r18_8xb16-8x4x1-100e_minik200-rgb/'
             'epoch_100.pth')
