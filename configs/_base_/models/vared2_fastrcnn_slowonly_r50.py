# The detector above with a dynamic SlowOnly-R50 (search space 2) and the
# efficiency loss; starts from the base detector's checkpoint (load_from)
_base_ = ['./fastrcnn_slowonly_r50.py']

model = dict(
    type='VARED2FastRCNN',
    efficiency_loss=dict(type='EfficiencyLoss', loss_weight=0.5),
    backbone=dict(
        type='mmaction.VARED2ResNet3dSlowOnly',
        dynamic_cfg=dict(search_space=2)))
