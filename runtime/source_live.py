"""A video source live: ``--source take1.mp4 --cam 0``.

The source clip is tracked whole when the run opens (a few seconds for a 10 s clip, prepare time,
not the first live frame) and then played in a loop on the camera's clock: the camera frame at
stream time t drives source frame ``floor(t * fps) mod length``, decoded in order as time passes
(one frame held, whatever the clip's length). A source frame with no face is shown as it is.
"""

from __future__ import annotations

import contextlib

import numpy as np

from facepaint.runtime.config import AppConfig
from facepaint.runtime.session import Session, Tracked, open_tracker
from facepaint.runtime.source_faces import track_clip
from facepaint.runtime.source_track import ClipReader, SourceTrack, source_frames
from facepaint.runtime.source_video import SourceVideoRender, check_video_source, engine_config, read_frame


class SourceClip:
    """The source clip of a live session, driven frame by frame.

    Args:
        session: The live session, prepared on the clip's base frame.
        track: The clip, tracked.
        motion: ``keep`` or ``driver`` (``--source-motion``).
    """

    def __init__(self, session: Session, track: SourceTrack, motion: str) -> None:
        self.track = track
        self._job = SourceVideoRender(session, track, None, motion)
        self._reader = ClipReader(lambda: source_frames(track.path, track.size))

    def render(self, item: Tracked) -> np.ndarray:
        """The output for one tracked camera frame: the source frame due at its time, driven by it."""
        t = item.frame.pts
        i = int(t * self.track.fps) % len(self.track.faces)
        return self._job.frame(i, self._reader.get(i), item.frame.image, item.face, t)

    def close(self) -> None:
        """Close the clip's file."""
        self._reader.close()


def open_clip_session(config: AppConfig) -> tuple[Session, SourceClip]:
    """The live session of a video source and its clip (the caller closes both).

    Raises:
        FacepaintError: What ``check_video_source`` and ``track_source`` refuse, or a session that
            cannot open.
    """
    check_video_source(config)
    with contextlib.closing(open_tracker(config.tracker, live=False)) as tracker:
        track = track_clip(config.source, tracker, config.faces)
    session = Session(engine_config(config), live=True, image=read_frame(track, track.base_index), found=track.found)
    try:
        return session, SourceClip(session, track, config.source_video.motion)
    except BaseException:
        session.close()
        raise
