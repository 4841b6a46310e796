# Base of Tables 1 and 2 of the paper: R(2+1)D-18 on Mini-Kinetics-200,
# 16x2x1 clips at 112x112
_base_ = [
    '../../_base_/models/r2plus1d_r18.py',
    '../../_base_/datasets/minik200_112px.py',
    '../../_base_/schedules/sgd_cosine_100e.py',
    '../../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=200))
