_base_ = ['./video_224px.py']

data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
train_dataloader = dict(
    dataset=dict(
        ann_file='data/kinetics400/kinetics400_train_list_videos.txt',
        data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(
        ann_file='data/kinetics400/kinetics400_val_list_videos.txt',
        data_prefix=dict(video=data_root_val)))
test_dataloader = val_dataloader
