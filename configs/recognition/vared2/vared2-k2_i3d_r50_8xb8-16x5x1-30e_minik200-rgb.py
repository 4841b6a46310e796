# Dynamic I3D-R50 on minik200, search space 2, fine-tuned from the base
_base_ = [
    '../../_base_/models/vared2_i3d_r50.py',
    '../../_base_/datasets/minik200_224px.py',
    '../../_base_/schedules/sgd_finetune_30e.py',
    '../../_base_/vared2_runtime.py'
]

model = dict(cls_head=dict(num_classes=200))
load_from = ('work_dirs/i3d_imagenet-pretrained-r50_8xb8-16x5x1-100e_'
             'minik200-rgb/epoch_100.pth')
auto_scale_lr = dict(base_batch_size=64)
