# Table 3 of the paper: dynamic TPN-16f (backbone and neck), search
# space 2, fine-tuned from the base TPN-16f
_base_ = [
    '../../_base_/models/vared2_tpn_slowonly_r50.py',
    '../../_base_/datasets/minik200_224px_16x4x1.py',
    '../../_base_/schedules/sgd_finetune_30e.py',
    '../../_base_/vared2_runtime.py'
]

model = dict(
    neck=dict(
        temporal_modulation_cfg=dict(downsample_scales=(16, 16)),
        aux_head_cfg=dict(out_channels=200)),
    cls_head=dict(num_classes=200))
optim_wrapper = dict(optimizer=dict(lr=0.001))
load_from = ('work_dirs/tpn-slowonly_imagenet-pretrained-r50_8xb8-16x4x1-'
             '150e_minik200-rgb/epoch_150.pth')
auto_scale_lr = dict(base_batch_size=64)
