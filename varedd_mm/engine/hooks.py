# Copyright (c) varedd_mm contributors. All rights reserved.
"""Runner hooks of VA-RED² (codebase-agnostic, in mmengine's root HOOKS)."""
import itertools
from typing import Optional

from mmengine.dist import all_reduce_params, is_distributed
from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from varedd_mm.ops import fast_inference, recalibrate_bn


def inference_forward(model, data_batch) -> None:
    """The network part of ``model.test_step(data_batch)``, for training
    batches: the model's own ``vared2_inference_forward(data_batch)`` where
    it defines one (a task whose ``predict`` or test-mode preprocessing
    cannot take a training batch as it comes), else the data preprocessor
    in test mode and ``mode='predict'``. Used for BN recalibration, so that
    exactly the BNs of the real inference forward run (necks and heads
    included, auxiliary training-only heads not).
    """
    own = getattr(model, 'vared2_inference_forward', None)
    if own is not None:
        own(data_batch)
        return
    data = model.data_preprocessor(data_batch, False)
    model._run_forward(data, mode='predict')


def _sum_over_ranks(tensors) -> None:
    all_reduce_params(tensors, op='sum')


@HOOKS.register_module()
class VARED2RecalibrateBNHook(Hook):
    """Re-estimate BN statistics under the hard inference policy (see
    :func:`varedd_mm.recalibrate_bn`) from ``num_batches`` training batches,
    after every ``interval`` epochs (or iterations) and at the end of
    training, *before* the checkpoint of that step is saved, so validation,
    the saved checkpoint and ``tools/test.py`` all use the recalibrated
    statistics. Under distributed training the statistics are averaged over
    the ranks.

    The batches run through the model's inference forward
    (:func:`inference_forward`), with the model in training mode as the
    model itself sets it (``norm_eval`` / ``frozen_stages`` BNs stay frozen):
    every BN that runs at test time (backbone, neck, heads) is re-estimated,
    BNs that the model freezes or that only run in training keep their
    statistics.

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

    def before_train(self, runner) -> None:
        """Refuse the schedules on which recalibration would miss the
        checkpoints or disturb the training stream."""
        loop = runner.train_loop
        iter_based = isinstance(loop, IterBasedTrainLoop)
        if iter_based and self.by_epoch:
            raise ValueError(
                'VARED2RecalibrateBNHook: the training loop is iteration-'
                'based, so by_epoch must be False (with by_epoch=True the '
                'statistics would be recalibrated after the last checkpoint '
                'is saved); set by_epoch=False and interval to the '
                'checkpoint interval')
        loader = getattr(loop, 'dataloader', None)
        if (not iter_based and not self.by_epoch
                and getattr(loader, 'persistent_workers', False)):
            raise ValueError(
                'VARED2RecalibrateBNHook: by_epoch=False in an epoch-based '
                'loop with persistent dataloader workers would restart the '
                'running epoch at every recalibration; use by_epoch=True, or '
                'train_dataloader.persistent_workers=False')

    def _batches(self, runner):
        """``num_batches`` training batches. An iteration-based loop keeps
        one iterator over an infinite sampler (its persistent workers
        cannot serve a second one): draw the next batches of its stream;
        after an epoch, iterate the dataloader anew."""
        stream = getattr(
            getattr(runner, 'train_loop', None), 'dataloader_iterator', None)
        if stream is not None:
            return (next(stream) for _ in range(self.num_batches))
        return itertools.islice(runner.train_dataloader, self.num_batches)

    def recalibrate(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model

        used = recalibrate_bn(
            model,
            self._batches(runner),
            inference_forward,
            reduce=_sum_over_ranks if is_distributed() else None)
        runner.logger.info(f'VA-RED2: BN statistics recalibrated under the '
                           f'inference policy on {used} training batches')


def _skip(*args, **kwargs) -> None:
    return None


@HOOKS.register_module()
class VARED2FastInferenceHook(Hook):
    """Test the model as it runs fastest (:func:`varedd_mm.fast_inference`):
    before the test loop, after the checkpoint is loaded, fold every BN
    into its conv, run the VA-RED² layers' fused inference path and, with
    ``channels_last``, lay the model and its inputs out channels-last. The
    metrics are then those of that execution (equal to the unfused model's
    to float rounding). Validation during training is left alone (a fused
    model cannot train); the model stays fused after the test.

    With an ``EMAHook`` the averaged weights are tested, as that hook
    would test them: they are swapped into the model before it is fused,
    and the hook's own swaps around the test epoch are turned off (they
    would pair the fused model's parameters with the unfused average's).

    ``tools/test.py --fuse-conv-bn [--channels-last]`` adds it; in a config
    (for ``mim test`` too): ``custom_hooks = [...,
    dict(type='VARED2FastInferenceHook', channels_last=True)]``.

    Args:
        channels_last (bool): Also lay the model and its inputs out
            channels-last (the faster layout on CPU, docs/engine.md).
    """
    priority = 'LOWEST'

    def __init__(self, channels_last: bool = False) -> None:
        if not isinstance(channels_last, bool):
            raise ValueError('VARED2FastInferenceHook.channels_last must be '
                             f'True or False, got {channels_last!r}')
        self.channels_last = channels_last

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if getattr(model, '_vared2_fast_inference', None) is None:
            for hook in getattr(runner, 'hooks', ()):
                if isinstance(hook, EMAHook):
                    hook.before_test_epoch(runner)  # the average in
                    hook.before_test_epoch = hook.after_test_epoch = _skip
        fast_inference(model, self.channels_last)
        runner.logger.info(
            'VA-RED2: testing the fused inference model (BN folded into the '
            'convs' + (', channels-last' if self.channels_last else '') + ')')
