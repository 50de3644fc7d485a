"""Every registered plugin against its protocol, parametrised over the entry-point registry: a
plugin added to pyproject.toml without a case here fails ``test_every_plugin_has_a_contract_case``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pyvirtualcam

from facepaint.engine.errors import FacepaintError
from facepaint.engine.track import FaceTrack
from facepaint.plugins.base import FileSource, Frame, LiveSource, Sink, Source, Tracker, load_plugin
from fakes import RecordingBackend

GROUPS = ("facepaint.trackers", "facepaint.sources", "facepaint.sinks")
SINK_CASES = ("file", "vcam", "preview")
SOURCE_CASES = ("image", "paced", "video", "webcam")
TRACKER_CASES = ("face-alignment", "mediapipe")


def test_every_plugin_has_a_contract_case() -> None:
    cases = {"facepaint.trackers": TRACKER_CASES, "facepaint.sources": SOURCE_CASES, "facepaint.sinks": SINK_CASES}
    for group in GROUPS:
        assert tuple(_registered(group)) == tuple(sorted(cases[group])), group


def _registered(group: str) -> list[str]:
    """Names registered in one entry-point group, sorted (what ``load_plugin`` finds)."""
    return sorted(ep.name for ep in entry_points(group=group))


@pytest.mark.parametrize("name", _registered("facepaint.trackers"))
def test_tracker_finds_the_portrait_face_largest_first_and_closes_once(name: str, media: Path) -> None:
    if name == "face-alignment":
        pytest.importorskip("face_alignment", reason="the [fan] extra is not installed")
    from facepaint.plugins.sources.image import read_image
    from facepaint.plugins.trackers.config import TrackerConfig

    image = read_image(media / "portraits" / "obama.jpg", "portrait")
    tracker = load_plugin("facepaint.trackers", name)(TrackerConfig(name=name, smoothing=False))
    assert isinstance(tracker, Tracker)
    with contextlib.closing(tracker):
        faces = tracker.track(image, None)
        assert faces and all(isinstance(f, FaceTrack) for f in faces)
        assert [f.area for f in faces] == sorted((f.area for f in faces), reverse=True)
        h, w = image.shape[:2]
        lm = np.asarray(faces[0].landmarks)
        assert (0 <= lm[:, 0]).all() and (lm[:, 0] < w).all() and (0 <= lm[:, 1]).all() and (lm[:, 1] < h).all()
        assert tracker.track(np.zeros((64, 64, 3), np.uint8), None) == []  # no face is an empty list
        tracker.reset()
    tracker.close()  # a second close does nothing


def _source(name: str, media: Path) -> Any:
    clip = str(media / "driving" / "lp_d0.mp4")
    if name == "image":
        return load_plugin("facepaint.sources", name)(media / "portraits" / "lp_s42.jpg")
    if name == "paced":
        return load_plugin("facepaint.sources", name)(clip)
    if name == "video":
        return load_plugin("facepaint.sources", name)(clip)
    return load_plugin("facepaint.sources", name)(0, capture_factory=lambda device: _StillCapture())


class _StillCapture:
    """A cv2.VideoCapture stand-in with one grey frame (there is no camera on the test machines)."""

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        import cv2

        return {cv2.CAP_PROP_FRAME_WIDTH: 64.0, cv2.CAP_PROP_FRAME_HEIGHT: 48.0, cv2.CAP_PROP_FPS: 30.0}.get(prop, 0.0)

    def read(self) -> tuple[bool, np.ndarray]:
        return True, np.full((48, 64, 3), 90, np.uint8)

    def release(self) -> None:
        pass


@pytest.mark.parametrize("name", _registered("facepaint.sources"))
def test_source_yields_rgb_frames_of_its_size_and_closes_once(name: str, media: Path) -> None:
    source = _source(name, media)
    assert isinstance(source, Source)
    assert isinstance(source, LiveSource) == source.live
    if not source.live:
        assert isinstance(source, FileSource) and source.frame_count is not None
    first = next(iter(source))
    assert isinstance(first, Frame) and first.image.dtype == np.uint8
    assert first.image.shape == (source.size[1], source.size[0], 3)
    source.close()
    source.close()


@pytest.mark.parametrize("name", [n for n in _registered("facepaint.sources") if n != "webcam"])
def test_source_refuses_a_missing_file_with_one_line(name: str, tmp_path: Path) -> None:
    with pytest.raises(FacepaintError) as info:
        load_plugin("facepaint.sources", name)(str(tmp_path / "missing.mp4"))
    assert "\n" not in str(info.value) and "missing.mp4" in str(info.value)


def _sink(name: str, tmp_path: Path) -> tuple[Any, Callable[[], bool]]:
    """The sink and a check that what was written arrived."""
    if name == "file":
        out = tmp_path / "out.mp4"
        return load_plugin("facepaint.sinks", name)(out, fps=25, size=(64, 48)), out.is_file
    if name == "vcam":
        from facepaint.plugins.sinks.vcam import VirtualCamConfig

        RecordingBackend.instances.clear()
        sink = load_plugin("facepaint.sinks", name)(VirtualCamConfig(size=(64, 48), backend="recording"), 25.0,
                                                    clock=iter(np.arange(0, 10, 0.04)).__next__)
        return sink, lambda: bool(RecordingBackend.instances[0].frames)
    from facepaint.plugins.sinks.preview import display_available

    if not display_available():
        pytest.skip("the preview sink needs a display (tests/runtime/test_live_preview.py runs it under Xvfb)")
    return load_plugin("facepaint.sinks", name)(), lambda: True


@pytest.mark.parametrize("name", _registered("facepaint.sinks"))
def test_sink_writes_frames_and_closes_once(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(pyvirtualcam.camera.BACKENDS, "recording", RecordingBackend)
    sink, arrived = _sink(name, tmp_path)
    assert isinstance(sink, Sink)
    for i in range(3):
        sink.write(Frame(np.full((48, 64, 3), 40 * i, np.uint8), i, i / 25, 0.0))
    sink.close()
    sink.close()
    assert arrived()
