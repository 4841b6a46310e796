# What turns an r18-d8 mmseg config into its VA-RED2 version (search space
# 2, efficiency loss, BN recalibration, realised GFLOPs per image). Used as
# a second base next to the base config; the config then sets
#   model = {{_base_.vared2_model}}
#   val_evaluator = {{_base_.vared2_evaluator}}
# and custom_hooks with its checkpoint interval.
vared2_model = dict(
    type='VARED2EncoderDecoder',
    pretrained=None,  # starts from the base checkpoint (load_from)
    efficiency_loss=dict(type='EfficiencyLoss', loss_weight=0.5),
    backbone=dict(type='VARED2ResNetV1c', dynamic_cfg=dict(search_space=2)))
# realised GFLOPs per image (every slide window counted) next to mIoU
vared2_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(
        type='VARED2EfficiencyMetric', row_name='window', sample_name='image')
]
