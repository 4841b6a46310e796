# Copyright (c) varedd_mm contributors. All rights reserved.
from .gate_calibration import calibrate_gates, realised_cost
from .model_utils import (ClipModel, DetectionModel, ImageModel, as_network,
                          build_loader, build_model_from_cfg,
                          build_test_loader, default_input_shape, load_model,
                          load_weights, quiet_mmengine, without_pretrained)
from .policy_stats import plot_policy, policy_statistics
from .redundancy import (RedundancyMeter, pair_stats, redundancy_proportion,
                         split_tensors)
from .table7 import plot_accuracy_vs_gflops
from .time_breakdown import time_breakdown

__all__ = [
    'calibrate_gates', 'realised_cost', 'ClipModel', 'DetectionModel',
    'ImageModel', 'as_network', 'build_loader', 'build_model_from_cfg',
    'default_input_shape', 'build_test_loader', 'load_model', 'load_weights',
    'plot_accuracy_vs_gflops', 'plot_policy', 'policy_statistics',
    'RedundancyMeter', 'pair_stats', 'redundancy_proportion', 'split_tensors',
    'quiet_mmengine', 'without_pretrained', 'time_breakdown'
]
