# Base R(2+1)D-18 on the harder synthetic benchmark
# (varedd_mm.datasets.synthetic_motion_hard, written by
# tools/data/generate_synthetic_motion.py --variant hard): ten classes, four
# by appearance only (static), six by motion direction and speed; the basic
# demo's model, optimiser and pipelines, trained from scratch on the CPU for
# 20 epochs (tools/run_hard_benchmark.py trains it in work_dirs/hard/base).
# 12 epochs were too few: the same config ended at 51.5-91.0 % validation
# top-1 in four runs (the pans learnt late or not at all), 20 epochs at 89.5
# and 96.0 % in two (seeds 0 and 1).
_base_ = ['./r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-rgb.py']

data_root = 'data/synthetic_motion_hard'
model = dict(cls_head=dict(num_classes=10))
train_cfg = dict(max_epochs=20, val_interval=20)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=20, by_epoch=True, begin=0, end=20)
]
default_hooks = dict(checkpoint=dict(interval=20))
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
