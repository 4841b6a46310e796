# Mini-Kinetics-200 (Xie et al., 2018): lists written by
# tools/data/mini_kinetics200/build_annotations.py from a Kinetics-400
# video list; videos are the Kinetics-400 ones. MiniKinetics200Dataset is
# mmaction's VideoDataset whose missing list names the tool that builds it.
_base_ = ['./video_224px.py']

data_root = 'data/kinetics400/videos_train'
data_root_val = 'data/kinetics400/videos_val'
train_dataloader = dict(
    dataset=dict(
        type='MiniKinetics200Dataset',
        ann_file='data/mini_kinetics200/minik200_train_list_videos.txt',
        data_prefix=dict(video=data_root)))
val_dataloader = dict(
    dataset=dict(
        type='MiniKinetics200Dataset',
        ann_file='data/mini_kinetics200/minik200_val_list_videos.txt',
        data_prefix=dict(video=data_root_val)))
test_dataloader = val_dataloader
