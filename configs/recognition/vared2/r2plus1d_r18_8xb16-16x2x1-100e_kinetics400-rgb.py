# Base R(2+1)D-18 on kinetics400, 16x2x1 clips at 112x112
_base_ = [
    '../../_base_/models/r2plus1d_r18.py',
    '../../_base_/datasets/kinetics400_112px.py',
    '../../_base_/schedules/sgd_cosine_100e.py',
    '../../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=400))
