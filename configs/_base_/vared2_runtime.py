# Runtime of the dynamic models: GFLOPs per clip next to top-1/top-5, and BN
# statistics recalibrated under the inference policy before each checkpoint.
_base_ = ['./default_runtime.py']

custom_hooks = [dict(type='VARED2RecalibrateBNHook', num_batches=50)]
val_evaluator = [dict(type='AccMetric'), dict(type='VARED2EfficiencyMetric')]
test_evaluator = val_evaluator
