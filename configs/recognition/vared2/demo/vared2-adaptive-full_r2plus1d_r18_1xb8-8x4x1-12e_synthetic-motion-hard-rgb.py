# The adaptive config (time-only layers, gates trained by counterfactual
# ranking, budget 0.7, 12 epochs) with the shared weights also trained as
# the plain network: every step adds the task loss of the network forced
# to the full choice (full_choice_loss, weight 1; the sandwich rule's
# largest network). One more forward and backward per step.
# docs/policy.md, "Training the full choice too".
_base_ = [
    './vared2-adaptive_r2plus1d_r18_1xb8-8x4x1-12e_'
    'synthetic-motion-hard-rgb.py'
]

model = dict(full_choice_loss=dict(loss_weight=1.0))
