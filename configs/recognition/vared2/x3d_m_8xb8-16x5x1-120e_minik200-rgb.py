# Base X3D-M on minik200, 16x5x1 clips at 224x224, 120 epochs
_base_ = [
    '../../_base_/models/x3d_m.py', '../../_base_/datasets/minik200_224px.py',
    '../../_base_/schedules/sgd_cosine_120e.py',
    '../../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=200))
auto_scale_lr = dict(base_batch_size=64)
