# Dynamic R(2+1)D-18 (search space 2) on the harder synthetic benchmark,
# fine-tuned for 4 epochs from its base (r2plus1d_r18_1xb8-8x4x1-20e_
# synthetic-motion-hard-rgb.py) with the basic demo's VA-RED2 recipe, the
# gate reading the pooled frame differences too (gate.input='mean_tdiff'),
# standardised over the clips of the batch (gate.norm_input=True: without
# it the gates' probabilities hardly varied from clip to clip, see
# docs/policy.md).
# tools/run_hard_benchmark.py runs it at several budgets
# (model.efficiency_loss.target) and prunes the base to the GFLOPs each
# realises, fine-tuned with this schedule (Table 7 of the paper).
_base_ = ['./vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py']

data_root = 'data/synthetic_motion_hard'
model = dict(
    backbone=dict(
        dynamic_cfg=dict(gate=dict(input='mean_tdiff', norm_input=True))),
    cls_head=dict(num_classes=10))
# where tools/run_hard_benchmark.py trains the base of this benchmark
load_from = 'work_dirs/hard/base/epoch_20.pth'
train_cfg = dict(max_epochs=4, val_interval=4)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=4, by_epoch=True, begin=0, end=4)
]
default_hooks = dict(checkpoint=dict(interval=4))
custom_hooks = [
    dict(type='VARED2RecalibrateBNHook', num_batches=15, interval=4)
]
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
