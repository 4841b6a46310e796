# TPN on SlowOnly-R50 (ImageNet-inflated init, as mmaction's TPN configs)
_base_ = ['mmaction::_base_/models/tpn_slowonly_r50.py']
