_base_ = ['./x3d_m.py']

model = dict(
    type='VARED2Recognizer3D',
    efficiency_loss=dict(type='EfficiencyLoss', loss_weight=0.5),
    backbone=dict(type='VARED2X3D', dynamic_cfg=dict(search_space=2)))
