# X3D base models: SGD + cosine, 120 epochs
_base_ = ['./sgd_cosine_100e.py']

train_cfg = dict(max_epochs=120)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5),
    dict(
        type='CosineAnnealingLR',
        T_max=115,
        eta_min=0,
        by_epoch=True,
        begin=5,
        end=120)
]
