# Table 13 of the paper base: X3D-M on Kinetics-400 trained for 256 epochs
_base_ = ['./x3d_m_8xb8-16x5x1-120e_kinetics400-rgb.py']

train_cfg = dict(max_epochs=256)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5),
    dict(
        type='CosineAnnealingLR',
        T_max=251,
        eta_min=0,
        by_epoch=True,
        begin=5,
        end=256)
]
