# Table 13 of the paper: dynamic X3D-M fine-tuned from the 256-epoch base
_base_ = ['./vared2-k2_x3d_m_8xb8-16x5x1-30e_kinetics400-rgb.py']

load_from = 'work_dirs/x3d_m_8xb8-16x5x1-256e_kinetics400-rgb/epoch_256.pth'
