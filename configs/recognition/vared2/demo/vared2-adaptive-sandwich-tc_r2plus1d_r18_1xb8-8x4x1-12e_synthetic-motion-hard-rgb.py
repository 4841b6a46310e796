# The sandwich config with both of the paper's dimensions: every layer may
# halve the frames and/or the output channels (dynamic_cfg.dims), so the
# smallest network the sandwich rule trains has every layer at half the
# frames and half the channels: 0.23 of the base's GFLOPs per clip, against
# the time-only config's 0.53 (channels alone: 0.43; tools/analysis/
# get_flops.py <this file> --choice 1 1). The counterfactual ranking
# (policy_rank) then measures one reduction per dimension: one more forward
# without gradients per step than the sandwich config. Budget 0.4, below
# what time alone can reach, where static pruning has to remove a larger
# share of the filters. docs/policy.md, "Time and channels at budget 0.4".
_base_ = [
    './vared2-adaptive-sandwich_r2plus1d_r18_1xb8-8x4x1-12e_'
    'synthetic-motion-hard-rgb.py'
]

model = dict(
    backbone=dict(dynamic_cfg=dict(dims=('temporal', 'channel'))),
    efficiency_loss=dict(target=0.4))
