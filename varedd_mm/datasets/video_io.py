# Copyright (c) varedd_mm contributors. All rights reserved.
"""Writing the generated datasets' videos."""
from typing import Sequence

import numpy as np


def write_video(path: str,
                frames: Sequence[np.ndarray],
                fps: int,
                crf: int,
                preset: str = 'veryfast') -> None:
    """Write RGB uint8 frames ``(H, W, 3)`` (even H and W) as an H.264 mp4
    (yuv420p) with PyAV.

    The RGB to YUV conversion and the encoder run on one thread each. With
    PyAV's default (threaded) conversion, the same frames gave up to 5
    different files in 40 encodings of one clip on a loaded machine here,
    and a from-scratch model trained on the decoded pixels lands elsewhere
    (the detection demo's base moved by 10 frame-mAP points between two
    generations of its data). One thread each made this rarer (at most 2
    different files in 40 encodings under load) but not impossible: the
    remaining source is not found yet, so generated datasets are not
    guaranteed bit-identical across runs."""
    import av
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = 'yuv420p'
        stream.options = {'crf': str(crf), 'preset': preset}
        stream.thread_count = 1
        for frame in frames:
            yuv = av.VideoFrame.from_ndarray(
                frame, format='rgb24').reformat(
                    format='yuv420p', threads=1)
            for packet in stream.encode(yuv):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
