# Cross-check against mmseg's model zoo, base: mmseg's own config
# (fcn_r18-d8_4xb2-80k_cityscapes-512x1024), unchanged
_base_ = ['mmseg::fcn/fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py']
custom_imports = dict(imports=['varedd_mm'], allow_failed_imports=False)
