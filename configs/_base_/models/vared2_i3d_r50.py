_base_ = ['./i3d_r50.py']

model = dict(
    type='VARED2Recognizer3D',
    efficiency_loss=dict(type='EfficiencyLoss', loss_weight=0.5),
    backbone=dict(
        type='VARED2ResNet3d',
        pretrained=None,  # starts from the base checkpoint (load_from)
        pretrained2d=False,
        dynamic_cfg=dict(search_space=2)))
