# The embedded synthetic segmentation dataset
# (varedd_mm.datasets.synthetic_segmentation, written by
# tools/data/generate_synthetic_segmentation.py): 64x64 images in the ADE20K
# layout and label values; 8 ADE20K classes told apart by texture. mmseg's
# ADE20KDataset maps them to labels 0..7 (unlabeled pixels: 255).
dataset_type = 'ADE20KDataset'
data_root = 'data/synthetic_seg'
metainfo = dict(
    classes=('wall', 'curtain', 'blind', 'fence', 'rug', 'cushion', 'rock',
             'tree'))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=metainfo,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
