# Dynamic R(2+1)D-18: the base model with VA-RED2 convs (search space 2)
_base_ = ['./r2plus1d_r18.py']

model = dict(
    type='VARED2Recognizer3D',
    efficiency_loss=dict(type='EfficiencyLoss', loss_weight=0.5),
    backbone=dict(
        type='VARED2ResNet2Plus1d', dynamic_cfg=dict(search_space=2)))
