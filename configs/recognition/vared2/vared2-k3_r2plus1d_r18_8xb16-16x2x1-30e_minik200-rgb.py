# Table 1 of the paper: search space 3 (compute all, 1/2 or 1/4 along each
# dimension)
_base_ = ['./vared2-k2_r2plus1d_r18_8xb16-16x2x1-30e_minik200-rgb.py']

model = dict(backbone=dict(dynamic_cfg=dict(search_space=3)))
