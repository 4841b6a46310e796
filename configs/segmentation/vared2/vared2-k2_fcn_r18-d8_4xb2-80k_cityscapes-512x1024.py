# Cross-check against mmseg's model zoo, VA-RED2: the base with a dynamic
# backbone (search space 2), fine-tuned from the base checkpoint
_base_ = [
    './fcn_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    '../../_base_/vared2_seg.py'
]

model = {{_base_.vared2_model}}
val_evaluator = {{_base_.vared2_evaluator}}
test_evaluator = val_evaluator
# BN statistics under the inference policy before each checkpoint
custom_hooks = [
    dict(
        type='VARED2RecalibrateBNHook',
        num_batches=50,
        by_epoch=False,
        interval=8000)
]
load_from = ('work_dirs/'
             'fcn_r18-d8_4xb2-80k_cityscapes-512x1024/iter_80000.pth')
