# FCN on a dilated ResNet-18 (ResNetV1c, d8), as mmseg's r18-d8 configs:
# FCNHead 512 -> 128, FCN auxiliary head 256 -> 64, ImageNet init
_base_ = ['mmseg::_base_/models/fcn_r50-d8.py']

model = dict(
    pretrained='open-mmlab://resnet18_v1c',
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
