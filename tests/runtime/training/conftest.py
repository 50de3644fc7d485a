"""A tiny training cache (8 tracked frames, 4 still-box crops, of one real train clip), built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_clips(media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding one clip: ``train/fomm_00.mp4`` (a talking Obama, 256x256)."""
    clips = tmp_path_factory.mktemp("clips")
    (clips / "fomm_00.mp4").symlink_to(media / "train" / "fomm_00.mp4")
    return clips


@pytest.fixture(scope="session")
def image_tracker():
    """A MediaPipe tracker (image mode is what the tests use), closed at the end."""
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker

    with MediaPipeTracker(TrackerConfig(smoothing=False)) as tracker:
        yield tracker


@pytest.fixture(scope="session")
def tiny_cache(tiny_clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache of ``tiny_clips``: 8 frames spread over the clip, 4 of them also still-box crops."""
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker
    from facepaint.runtime.training.cache import CacheSettings, build_cache

    out = tmp_path_factory.mktemp("cache")
    build_cache(tiny_clips, out, CacheSettings(max_frames=8, still_crops=4),
                lambda: MediaPipeTracker(TrackerConfig(smoothing=False)))
    return out
