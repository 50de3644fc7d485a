"""Property-based fuzzing (hypothesis) of the loaders users feed files to: images, videos, --config
TOML and engine headers. Whatever the bytes, each loader returns a well-formed value or raises our
own one-line error; nothing else escapes.

Bounded for CI: a fixed number of examples per property, derandomized so a run is repeatable (set
FACEPAINT_FUZZ_EXAMPLES=2000 and FACEPAINT_FUZZ_RANDOM=1 to search longer and wider by hand).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from facepaint.engine.errors import FacepaintError  # noqa: E402

EXAMPLES = int(os.environ.get("FACEPAINT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("FACEPAINT_FUZZ_RANDOM"),
                database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _picture() -> np.ndarray:
    """A small synthetic picture (gradients and noise): real structure for the codecs to chew on."""
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:48, 0:40]
    image = np.stack([xs * 6, ys * 5, (xs + ys) * 3], axis=-1) + rng.integers(0, 30, (48, 40, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Valid files to mutate, and a folder to write the mutants into."""
    import av
    import cv2

    folder = tmp_path_factory.mktemp("fuzz")
    files = {suffix: cv2.imencode(suffix, _picture())[1].tobytes() for suffix in (".png", ".jpg", ".webp", ".bmp")}
    clip = folder / "seed.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"g": "4"})
        stream.width, stream.height, stream.pix_fmt = 40, 48, "yuv420p"
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(np.roll(_picture(), i * 3, axis=1), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    files[".mp4"] = clip.read_bytes()
    return {"folder": folder, "files": files}


@st.composite
def mutated(draw: Any, data: bytes) -> bytes:
    """``data`` with a few bytes overwritten, optionally cut short and with bytes inserted."""
    out = bytearray(data)
    for pos, value in draw(st.lists(st.tuples(st.integers(0, len(out) - 1), st.integers(0, 255)), max_size=12)):
        out[pos] = value
    if draw(st.booleans()):
        del out[draw(st.integers(0, len(out))):]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(out)))
        out[at:at] = draw(st.binary(min_size=1, max_size=64))
    return bytes(out)


def _write(seeds: dict[str, Any], suffix: str, data: bytes) -> Path:
    path = seeds["folder"] / f"case{suffix}"
    path.write_bytes(data)
    return path


def _check_image(path: Path) -> None:
    from facepaint.plugins.sources.image import read_image

    try:
        image = read_image(path)
    except FacepaintError as exc:
        assert "\n" not in str(exc)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.flags.c_contiguous


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".png", ".jpg", ".webp", ".bmp", ".tiff"]))
def test_image_loader_on_random_bytes(seeds: dict[str, Any], data: bytes, suffix: str) -> None:
    _check_image(_write(seeds, suffix, data))


@FUZZ
@given(st.data())
def test_image_loader_on_mutated_images(seeds: dict[str, Any], data: Any) -> None:
    suffix = data.draw(st.sampled_from([".png", ".jpg", ".webp", ".bmp"]))
    _check_image(_write(seeds, suffix, data.draw(mutated(seeds["files"][suffix]))))


def _check_video(path: Path) -> None:
    from facepaint.plugins.sources.video import VideoSource

    try:
        with VideoSource(path) as video:
            for frame in video:
                h, w = frame.image.shape[:2]
                assert frame.image.dtype == np.uint8 and frame.image.shape[2] == 3 and (w, h) == video.size
    except FacepaintError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_video_loader_on_random_bytes(seeds: dict[str, Any], data: bytes) -> None:
    _check_video(_write(seeds, ".mp4", data))


@FUZZ
@given(st.data())
def test_video_loader_on_mutated_clips(seeds: dict[str, Any], data: Any) -> None:
    _check_video(_write(seeds, ".mp4", data.draw(mutated(seeds["files"][".mp4"]))))


TOML_SEED = b"""duration = 2.5
face_index = 0
[tracker]
smoothing = true
min_cutoff = 1.0
[encoder]
crf = 20
[virtual_camera]
size = [640, 480]
"""

KEYS = ["duration", "face_index", "loop", "output", "tracker", "tracker.smoothing", "tracker.max_faces",
        "encoder.crf", "encoder.preset", "virtual_camera.size", "engine", "nope", "tracker.nope"]
VALUES = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True), st.booleans(), st.text(max_size=12),
                   st.lists(st.integers(-5, 5000), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                                max_size=2))


def _check_config(path: Path) -> None:
    from facepaint.runtime.config import build_app_config, load_toml

    try:
        build_app_config(load_toml(path), {"source": "me.jpg", "driving": "talk.mp4", "output": "out.mp4"})
    except FacepaintError as exc:
        assert "\n" not in str(exc).strip()


@FUZZ
@given(st.data())
def test_config_parser_on_mutated_toml(seeds: dict[str, Any], data: Any) -> None:
    _check_config(_write(seeds, ".toml", data.draw(mutated(TOML_SEED))))


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5))
def test_config_parser_on_random_values(seeds: dict[str, Any], values: dict[str, Any]) -> None:
    import tomllib

    lines, tables = [], {}
    for key, value in values.items():
        table, _, name = key.rpartition(".")
        tables.setdefault(table, []).append((name, value))
    for table, items in sorted(tables.items()):
        if table:
            lines.append(f"[{table}]")
        for name, value in items:
            lines.append(f"{name} = {_toml_value(value)}")
    text = "\n".join(lines) + "\n"
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # a key both a table and a value: not a config anyone can write
    _check_config(_write(seeds, ".toml", text.encode()))


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value == float("inf") else "-inf" if value == float("-inf")
                                             else repr(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {v}" for k, v in value.items()) + "}"
    return json.dumps(value)


@FUZZ
@given(data=st.binary(max_size=512))
def test_engine_header_reader(seeds: dict[str, Any], data: bytes) -> None:
    from facepaint.engine.backends.provenance import MAGIC, read_engine_file

    for blob in (data, MAGIC + data):  # most random bytes fail at the magic; half get past it
        path = _write(seeds, ".engine", blob)
        try:
            read_engine_file(path)
        except FacepaintError as exc:
            assert "\n" not in str(exc)
