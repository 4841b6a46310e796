# Table 11 of the paper, base: PSPNet, dilated ResNet-18, ADE20K 512x512,
# 100K iterations with 8 images per iteration (4 GPUs x 2)
_base_ = [
    '../../_base_/models/pspnet_r18-d8.py', 'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py'
]
custom_imports = dict(imports=['varedd_mm'], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
train_dataloader = dict(batch_size=2)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=100000,
        by_epoch=False)
]
train_cfg = dict(max_iters=100000, val_interval=10000)
default_hooks = dict(checkpoint=dict(interval=10000))
