# The adaptive config with the sandwich rule's two ends: every step also
# adds the task losses of the network forced to the full choice and of the
# network forced to its smallest choice (every layer at half the frames),
# weight 1 each (full_choice_loss with smallest_weight). Two more forwards
# and backwards per step. docs/policy.md, "The sandwich rule's smallest
# network too".
_base_ = [
    './vared2-adaptive_r2plus1d_r18_1xb8-8x4x1-12e_'
    'synthetic-motion-hard-rgb.py'
]

model = dict(full_choice_loss=dict(loss_weight=1.0, smallest_weight=1.0))
