_base_ = ['mmaction::_base_/default_runtime.py']

# all a user adds to use varedd_mm components
custom_imports = dict(imports=['varedd_mm'], allow_failed_imports=False)

default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=3))
val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
