# The embedded synthetic J-HMDB-layout dataset
# (varedd_mm.datasets.synthetic_jhmdb, converted by
# tools/data/jhmdb/convert_jhmdb.py exactly as the real release, with
# --train-stride 4): 64x96 clips of 16-22 frames, 1-2 actors whose action
# is how they move; the ground-truth boxes serve as proposals. Clips 8x2,
# no augmentation (a horizontal flip would swap walk_left and walk_right).
_base_ = ['./jhmdb_split1.py']

data_root = 'data/synthetic_jhmdb/videos'
anno_root = 'data/synthetic_jhmdb/annotations'
num_classes = 5
ann_file_train = f'{anno_root}/jhmdb_split1_train.csv'
ann_file_val = f'{anno_root}/jhmdb_split1_val.csv'
gt_file = f'{anno_root}/jhmdb_split1_GT.pkl'
proposal_file_train = f'{anno_root}/jhmdb_split1_proposals_train.pkl'
proposal_file_val = f'{anno_root}/jhmdb_split1_proposals_val.pkl'
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleAVAFrames', clip_len=8, frame_interval=2),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleAVAFrames', clip_len=8, frame_interval=2, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs')
]
dataset_settings = dict(
    num_classes=num_classes, data_prefix=dict(img=data_root))
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        ann_file=ann_file_train,
        proposal_file=proposal_file_train,
        pipeline=train_pipeline,
        **dataset_settings))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        ann_file=ann_file_val,
        proposal_file=proposal_file_val,
        pipeline=val_pipeline,
        **dataset_settings))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiSportsMetric', ann_file=gt_file)
test_evaluator = val_evaluator
