# Dynamic X3D-M on mit, search space 2, fine-tuned from the 120e base
_base_ = [
    '../../_base_/models/vared2_x3d_m.py',
    '../../_base_/datasets/mit_224px.py',
    '../../_base_/schedules/sgd_finetune_30e.py',
    '../../_base_/vared2_runtime.py'
]

model = dict(cls_head=dict(num_classes=339))
load_from = 'work_dirs/x3d_m_8xb8-16x5x1-120e_mit-rgb/epoch_120.pth'
auto_scale_lr = dict(base_batch_size=64)
