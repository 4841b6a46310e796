# Dynamic TPN: dynamic SlowOnly-R50 backbone and dynamic TPN neck
_base_ = ['./tpn_slowonly_r50.py']

model = dict(
    type='VARED2Recognizer3D',
    efficiency_loss=dict(type='EfficiencyLoss', loss_weight=0.5),
    backbone=dict(
        type='VARED2ResNet3dSlowOnly',
        pretrained=None,  # starts from the base checkpoint (load_from)
        pretrained2d=False,
        dynamic_cfg=dict(search_space=2)),
    neck=dict(type='VARED2TPN', dynamic_cfg=dict(search_space=2)))
