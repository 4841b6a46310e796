# Dynamic R(2+1)D-18 (search space 2) on the harder synthetic benchmark,
# fine-tuned from its base (r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-
# hard-rgb.py) as the basic demo's VA-RED2 model is, with the gate reading
# the pooled frame differences too (gate.input='mean_tdiff').
_base_ = ['./vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py']

data_root = 'data/synthetic_motion_hard'
model = dict(
    backbone=dict(dynamic_cfg=dict(gate=dict(input='mean_tdiff'))),
    cls_head=dict(num_classes=10))
# where `tools/train.py` puts the base of this benchmark
load_from = ('work_dirs/r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-hard-'
             'rgb/epoch_20.pth')
train_dataloader = dict(
    dataset=dict(
        ann_file=f'{data_root}/train_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos')))
val_dataloader = dict(
    dataset=dict(
        ann_file=f'{data_root}/val_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos')))
test_dataloader = dict(
    dataset=dict(
        ann_file=f'{data_root}/val_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos')))
