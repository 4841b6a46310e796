# Base of Table 3 of the paper: TPN-8f (SlowOnly-R50, 8x8x1 clips at
# 224x224) on minik200
_base_ = [
    '../../_base_/models/tpn_slowonly_r50.py',
    '../../_base_/datasets/minik200_224px_8x8x1.py',
    '../../_base_/schedules/sgd_cosine_150e.py',
    '../../_base_/default_runtime.py'
]

model = dict(
    neck=dict(aux_head_cfg=dict(out_channels=200)),
    cls_head=dict(num_classes=200))
