# TPN's schedule: SGD + cosine, 150 epochs (5 of linear warm-up), lr 0.01
# at 8 GPUs x 8 clips
_base_ = ['./sgd_cosine_100e.py']

train_cfg = dict(max_epochs=150)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=5),
    dict(
        type='CosineAnnealingLR',
        T_max=145,
        eta_min=0,
        by_epoch=True,
        begin=5,
        end=150)
]
auto_scale_lr = dict(base_batch_size=64)
