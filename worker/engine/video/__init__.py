"""Video anonymization: probe, decode, detect and track faces, mask, re-encode with the other streams copied."""

from worker.engine.video.formats import VIDEO_FORMATS, sniff_video_format
from worker.engine.video.pipeline import VideoAnonymizer, VideoCancelled, VideoOptions, VideoResult
from worker.engine.video.probe import VideoInfo, VideoLimits, probe_video

__all__ = [
    "VIDEO_FORMATS",
    "VideoAnonymizer",
    "VideoCancelled",
    "VideoInfo",
    "VideoLimits",
    "VideoOptions",
    "VideoResult",
    "probe_video",
    "sniff_video_format",
]
