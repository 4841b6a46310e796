# I3D-R50 (ImageNet-inflated init, as mmaction's I3D configs)
_base_ = ['mmaction::_base_/models/i3d_r50.py']
