# Base I3D-R50 (ImageNet-inflated) on mit, 16x5x1 clips at 224x224
_base_ = [
    '../../_base_/models/i3d_r50.py', '../../_base_/datasets/mit_224px.py',
    '../../_base_/schedules/sgd_cosine_100e.py',
    '../../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=339))
auto_scale_lr = dict(base_batch_size=64)
