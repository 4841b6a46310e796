# Table 1 of the paper: 8-frame clips, search space 3
_base_ = ['./vared2-k2_r2plus1d_r18_8xb16-8x4x1-30e_minik200-rgb.py']

model = dict(backbone=dict(dynamic_cfg=dict(search_space=3)))
