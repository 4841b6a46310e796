# Tables 1 and 2 of the paper: dynamic R(2+1)D-18, search space 2,
# fine-tuned from the base
_base_ = [
    '../../_base_/models/vared2_r2plus1d_r18.py',
    '../../_base_/datasets/minik200_112px.py',
    '../../_base_/schedules/sgd_finetune_30e.py',
    '../../_base_/vared2_runtime.py'
]

model = dict(cls_head=dict(num_classes=200))
load_from = ('work_dirs/r2plus1d_r18_8xb16-16x2x1-100e_minik200-rgb/'
             'epoch_100.pth')
