# Table 10 of the paper: dynamic along channel only (the both-dimensions
# model is the Table 5 config)
_base_ = ['./vared2-k2_r2plus1d_r18_8xb16-16x2x1-30e_kinetics400-rgb.py']

model = dict(backbone=dict(dynamic_cfg=dict(dims=('channel', ))))
