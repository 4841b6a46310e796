# Copyright (c) varedd_mm contributors. All rights reserved.
"""Runner hooks of VA-RED² (codebase-agnostic, in mmengine's root HOOKS)."""
import itertools
from typing import Optional

from mmengine.dist import all_reduce_params, is_distributed
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch.nn.modules.batchnorm import _BatchNorm

from varedd_mm.ops import recalibrate_bn


@HOOKS.register_module()
class VARED2RecalibrateBNHook(Hook):
    """Re-estimate BN statistics under the hard inference policy (see
    :func:`varedd_mm.recalibrate_bn`) from ``num_batches`` training batches,
    after every ``interval`` epochs (or iterations) and at the end of
    training, *before* the checkpoint of that step is saved, so validation,
    the saved checkpoint and ``tools/test.py`` all use the recalibrated
    statistics. Under distributed training the statistics are averaged over
    the ranks.

    Args:
        num_batches (int): Training batches used per recalibration.
        interval (int): Every this many epochs (iterations if not
            ``by_epoch``).
        by_epoch (bool): Epoch- or iteration-based schedule.
    """
    # CheckpointHook is VERY_LOW: run before it in after_train_epoch/iter
    priority = 'LOW'

    def __init__(self,
                 num_batches: int = 20,
                 interval: int = 1,
                 by_epoch: bool = True) -> None:
        if not isinstance(num_batches, int) or num_batches < 1:
            raise ValueError('VARED2RecalibrateBNHook.num_batches must be a '
                             f'positive int, got {num_batches!r}')
        if not isinstance(interval, int) or interval < 1:
            raise ValueError('VARED2RecalibrateBNHook.interval must be a '
                             f'positive int, got {interval!r}')
        self.num_batches = num_batches
        self.interval = interval
        self.by_epoch = by_epoch

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and (self.every_n_epochs(runner, self.interval)
                              or self.is_last_train_epoch(runner)):
            self.recalibrate(runner)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not self.by_epoch and (self.every_n_train_iters(
                runner, self.interval) or self.is_last_train_iter(runner)):
            self.recalibrate(runner)

    def recalibrate(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model

        def forward(m, batch):
            data = m.data_preprocessor(batch, True)
            m._run_forward(data, mode='tensor')

        used = recalibrate_bn(
            model, itertools.islice(runner.train_dataloader, self.num_batches),
            forward)
        if is_distributed():
            buffers = [
                b for m in model.modules() if isinstance(m, _BatchNorm)
                for b in (m.running_mean, m.running_var) if b is not None
            ]
            all_reduce_params(buffers, op='mean')
        runner.logger.info(f'VA-RED2: BN statistics recalibrated under the '
                           f'inference policy on {used} training batches')
