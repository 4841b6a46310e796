# TPN's schedule: SGD + cosine, 150 epochs (5 of linear warm-up), lr 0.01
# at 8 GPUs x 8 clips
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=150, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=40, norm_type=2))
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
auto_scale_lr = dict(enable=False, base_batch_size=64)
