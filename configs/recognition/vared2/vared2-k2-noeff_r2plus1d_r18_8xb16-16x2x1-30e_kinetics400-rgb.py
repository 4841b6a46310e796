# Table 9 of the paper: trained without the efficiency loss (cost ratios
# are still logged)
_base_ = ['./vared2-k2_r2plus1d_r18_8xb16-16x2x1-30e_kinetics400-rgb.py']

model = dict(efficiency_loss=None)
