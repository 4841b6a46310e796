# J-HMDB-21 split 1 as tools/data/jhmdb/convert_jhmdb.py writes it: one mp4
# per clip (decord reads each clip's real length), AVA-style csv, proposals
# (the ground-truth boxes unless you converted with --proposals: a
# different, easier protocol than detected person proposals) and the GT pkl
# of MultiSportsMetric. Settings verified against mmaction2 1.2.0 (the
# centre frame of a clip is the annotated frame): timestamp_start=1,
# start_index=0, use_frames=False, fps=1. Clips of 8x2 frames fit the
# shortest J-HMDB videos (15 frames).
dataset_type = 'AVADataset'
data_root = 'data/jhmdb/videos'
anno_root = 'data/jhmdb/annotations'
split = 1
ann_file_train = f'{anno_root}/jhmdb_split{split}_train.csv'
ann_file_val = f'{anno_root}/jhmdb_split{split}_val.csv'
gt_file = f'{anno_root}/jhmdb_split{split}_GT.pkl'
proposal_file_train = f'{anno_root}/jhmdb_split{split}_proposals_train.pkl'
proposal_file_val = f'{anno_root}/jhmdb_split{split}_proposals_val.pkl'
num_classes = 21

train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleAVAFrames', clip_len=8, frame_interval=2),
    dict(type='DecordDecode'),
    dict(type='RandomRescale', scale_range=(256, 320)),
    dict(type='RandomCrop', size=256),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleAVAFrames', clip_len=8, frame_interval=2, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='FormatShape', input_format='NCTHW', collapse=True),
    dict(type='PackActionInputs')
]
dataset_settings = dict(
    type=dataset_type,
    num_classes=num_classes,
    data_prefix=dict(img=data_root),
    timestamp_start=1,
    start_index=0,
    use_frames=False,
    fps=1)
train_dataloader = dict(
    batch_size=8,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        ann_file=ann_file_train,
        proposal_file=proposal_file_train,
        pipeline=train_pipeline,
        **dataset_settings))
# AVARoIHead.predict takes one clip per batch
val_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        ann_file=ann_file_val,
        proposal_file=proposal_file_val,
        pipeline=val_pipeline,
        test_mode=True,
        **dataset_settings))
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiSportsMetric', ann_file=gt_file)
test_evaluator = val_evaluator
