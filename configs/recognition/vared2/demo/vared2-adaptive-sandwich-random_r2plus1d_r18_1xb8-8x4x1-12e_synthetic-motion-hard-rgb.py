# The sandwich config with the sandwich rule's random middle network too:
# every step also adds the task losses of the network with each layer at a
# random choice (full or half the frames, drawn per layer and per step),
# weight 1 (full_choice_loss.random_weight). The learned policy mixes full
# and reduced layers, a mixture neither end of the sandwich trains. One
# more forward and backward per step than the sandwich config.
# docs/policy.md, "The sandwich rule's random middle network".
_base_ = [
    './vared2-adaptive-sandwich_r2plus1d_r18_1xb8-8x4x1-12e_'
    'synthetic-motion-hard-rgb.py'
]

model = dict(full_choice_loss=dict(random_weight=1.0))
