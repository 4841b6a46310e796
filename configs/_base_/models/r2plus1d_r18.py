# R(2+1)D-18: mmaction's R(2+1)D-34 model config at depth 18
_base_ = ['mmaction::_base_/models/r2plus1d_r34.py']

model = dict(backbone=dict(depth=18))
