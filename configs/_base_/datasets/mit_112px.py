# Moments in Time (339 classes), mmaction's tools/data/mit layout.
_base_ = ['./video_112px.py']

data_root = 'data/mit/videos/training'
data_root_val = 'data/mit/videos/validation'
train_dataloader = dict(
    dataset=dict(
        ann_file='data/mit/mit_train_list_videos.txt',
        data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(
        ann_file='data/mit/mit_val_list_videos.txt',
        data_prefix=dict(video=data_root_val)))
test_dataloader = val_dataloader
