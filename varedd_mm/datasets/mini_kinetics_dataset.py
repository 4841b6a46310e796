# Copyright (c) varedd_mm contributors. All rights reserved.
"""The Mini-Kinetics-200 dataset of the configs: mmaction's
``VideoDataset`` whose missing annotation file is reported with the way to
build it."""
import os.path as osp
from typing import List

from mmaction.datasets import VideoDataset
from mmaction.registry import DATASETS

BUILD_TOOL = 'tools/data/mini_kinetics200/build_annotations.py'
SPLIT_LISTS = 'https://github.com/s9xie/Mini-Kinetics-200'


@DATASETS.register_module()
class MiniKinetics200Dataset(VideoDataset):
    """``VideoDataset`` over the Mini-Kinetics-200 lists written by
    ``tools/data/mini_kinetics200/build_annotations.py``.

    Mini-Kinetics-200 is published as lists of YouTube ids, not as an
    annotation file: the file has to be built from a Kinetics-400 copy
    first. A missing ``ann_file`` therefore raises a ``FileNotFoundError``
    that says how, instead of naming the path alone.

    Args:
        Same as ``VideoDataset``.
    """

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(
                f'Mini-Kinetics-200 annotation file {self.ann_file} not '
                'found. It is built from your Kinetics-400 video lists and '
                'the public Mini-Kinetics-200 split lists (train_ytid_list.'
                'txt and val_ytid_list.txt of Xie et al., 2018, '
                f'{SPLIT_LISTS}): python {BUILD_TOOL} --train-ids '
                'train_ytid_list.txt --val-ids val_ytid_list.txt '
                '--k400-train-list K400_TRAIN_LIST --k400-val-list '
                'K400_VAL_LIST --out-dir data/mini_kinetics200 (see '
                'configs/recognition/vared2/README.md); or set the '
                "config's ann_file to your list.")
        return super().load_data_list()
