# VA-RED2 fine-tuning from the base checkpoint (load_from): weights, gates
# and cheap ops together (efficiency loss and BN recalibration come with the
# vared2 model and runtime bases).
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=30, val_begin=1, val_interval=5)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=40, norm_type=2))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=30, eta_min=0, by_epoch=True)
]
auto_scale_lr = dict(enable=False, base_batch_size=128)
