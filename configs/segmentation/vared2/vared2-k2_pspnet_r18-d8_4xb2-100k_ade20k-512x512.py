# Table 11 of the paper, VA-RED2: the base with a dynamic backbone (search
# space 2: all or half of the output channels of every conv), fine-tuned
# from the base checkpoint with the efficiency loss
_base_ = [
    './pspnet_r18-d8_4xb2-100k_ade20k-512x512.py', '../../_base_/vared2_seg.py'
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
        interval=10000)
]
load_from = ('work_dirs/'
             'pspnet_r18-d8_4xb2-100k_ade20k-512x512/iter_100000.pth')
