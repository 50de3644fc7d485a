"""Bad and unusual images as the source portrait and as a still driving image, through the real CLI.

Each case ends one of two ways: it works and the output is checked (frame count, size, an upright
face), or it ends with one line that says what to do, exit code 2, and nothing at the output path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

W, H = 256, 320  # the generated portraits' size (conftest.PORTRAIT_SIZE)


def _encoded(image_rgb: np.ndarray, suffix: str) -> bytes:
    import cv2

    ok, data = cv2.imencode(suffix, np.ascontiguousarray(image_rgb[:, :, ::-1]))
    assert ok
    return data.tobytes()


def _pil_save(inputs: Any, name: str, convert: str | None = None, **kwargs: Any) -> Path:
    pil = pytest.importorskip("PIL.Image")

    def build(path: Path) -> Path:
        image = pil.fromarray(inputs.portrait())
        (image.convert(convert) if convert else image).save(path, **kwargs)
        return path

    return inputs.get(name, build)


def _exif_rotated(inputs: Any, name: str, orientation: int) -> Path:
    """The portrait's pixels stored turned, with the EXIF orientation tag that turns them upright."""
    pil = pytest.importorskip("PIL.Image")
    # np.rot90 turns counter-clockwise; the tag says how to turn the stored pixels for display.
    turns = {3: 2, 6: 1, 8: 3}[orientation]

    def build(path: Path) -> Path:
        stored = np.ascontiguousarray(np.rot90(inputs.portrait(), turns))
        exif = pil.Exif()
        exif[0x0112] = orientation
        pil.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
        return path

    return inputs.get(name, build)


def _truncated(inputs: Any, suffix: str) -> Path:
    data = _encoded(inputs.portrait(), suffix)
    return inputs.bytes_file(f"truncated{suffix}", data[: len(data) // 2])


def _cv2_write(inputs: Any, name: str, make: Callable[[], np.ndarray]) -> Path:
    import cv2

    def build(path: Path) -> Path:
        assert cv2.imwrite(str(path), make())
        return path

    return inputs.get(name, build)


def _group(inputs: Any) -> Path:
    """Two people side by side: the larger face first, then the smaller one."""
    def make() -> np.ndarray:
        import cv2

        a = inputs.portrait("obama.jpg")
        b = cv2.resize(inputs.portrait("biden2.jpg"), (W // 2, H // 2))
        canvas = np.full((H, W + b.shape[1], 3), 128, np.uint8)
        canvas[:, :W] = a
        canvas[H - b.shape[0]:, W:] = b
        return canvas[:, :, ::-1]

    return _cv2_write(inputs, "group.png", make)


def _cartoon(inputs: Any) -> Path:
    """A drawn face: circles and lines on a flat background (no photograph in it)."""
    def make() -> np.ndarray:
        import cv2

        img = np.full((H, W, 3), 235, np.uint8)
        cv2.ellipse(img, (128, 160), (80, 105), 0, 0, 360, (150, 190, 240), -1)
        for x in (95, 161):
            cv2.circle(img, (x, 135), 12, (255, 255, 255), -1)
            cv2.circle(img, (x, 135), 6, (40, 40, 40), -1)
        cv2.line(img, (128, 145), (120, 185), (90, 120, 170), 3)
        cv2.ellipse(img, (128, 210), (35, 14), 0, 0, 180, (60, 60, 200), 4)
        return img

    return _cv2_write(inputs, "cartoon.png", make)


def _painted(inputs: Any) -> Path:
    """The portrait turned into a painting by OpenCV's stylization filter."""
    def make() -> np.ndarray:
        import cv2

        return cv2.stylization(inputs.portrait()[:, :, ::-1], sigma_s=60, sigma_r=0.45)

    return _cv2_write(inputs, "painted.png", make)


def _tiny_face(inputs: Any) -> Path:
    """The portrait shrunk so the face is about 30 px wide, in the middle of a grey 320x400 canvas."""
    def make() -> np.ndarray:
        import cv2

        small = cv2.resize(inputs.portrait(), (W // 5, H // 5), interpolation=cv2.INTER_AREA)
        canvas = np.full((400, 320, 3), 128, np.uint8)
        canvas[170:170 + small.shape[0], 130:130 + small.shape[1]] = small
        return canvas[:, :, ::-1]

    return _cv2_write(inputs, "tiny-face.png", make)


def _cut_by_border(inputs: Any) -> Path:
    """The portrait with the left 45% of the image (half the face) cut away."""
    return _cv2_write(inputs, "cut.png", lambda: np.ascontiguousarray(inputs.portrait()[:, int(W * 0.45):, ::-1]))


def _huge(inputs: Any) -> Path:
    return _cv2_write(inputs, "huge.jpg", lambda: np.zeros((12000, 12000, 3), np.uint8))


def _png_bomb(inputs: Any) -> Path:
    """An 8x8 PNG whose (checksummed) header claims 40000x40000: refused before anything is decoded."""
    import zlib

    data = bytearray(_encoded(np.zeros((8, 8, 3), np.uint8), ".png"))
    data[16:24] = (40000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return inputs.bytes_file("bomb.png", bytes(data))


def _float_tiff(inputs: Any) -> Path:
    return _cv2_write(inputs, "float.tiff", lambda: inputs.portrait()[:, :, ::-1].astype(np.float32) / 255)


def _gray16(inputs: Any) -> Path:
    import cv2

    return _cv2_write(inputs, "gray16.png",
                      lambda: cv2.cvtColor(inputs.portrait(), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)


def _random_png(inputs: Any) -> Path:
    data = _encoded(inputs.portrait(), ".png")
    rng = np.random.default_rng(7)
    return inputs.bytes_file("corrupt.png", data[:16] + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())


# name: (build(inputs) -> path, expected size (w, h) of the output, or the words of the error)
SOURCE_CASES: dict[str, tuple[Callable[[Any], Path], Any]] = {
    "zero-byte jpg": (lambda i: i.bytes_file("empty.jpg", b""), "is empty (0 bytes)"),
    "truncated jpg": (lambda i: _truncated(i, ".jpg"), "is not an image"),
    "truncated png": (lambda i: _truncated(i, ".png"), "is not an image"),
    "truncated webp": (lambda i: _truncated(i, ".webp"), "is not an image"),
    "corrupt png": (_random_png, "is not an image"),
    "text as jpg": (lambda i: i.bytes_file("notes.jpg", b"a shopping list, not a picture\n"), "is not an image"),
    "folder as jpg": (lambda i: i.folder_named("album.jpg"), "is not a file"),
    # A video is a valid source now (video-to-video); this 6-frame clip is refused as too short for one.
    "short video as source": (lambda i: i.driving_clip(), "a video source needs at least 1 s"),
    "float32 tiff": (_float_tiff, "is not an image"),
    "huge 12000x12000": (_huge, "too large (12000x12000, 144 MP"),
    "png bomb": (_png_bomb, "too large (40000x40000"),
    "tiny 16x16": (lambda i: _cv2_write(i, "tiny.png", lambda: np.full((16, 16, 3), 90, np.uint8)), "no face found"),
    "no face": (lambda i: _cv2_write(i, "wall.png", lambda: np.tile(
        np.linspace(0, 255, W, dtype=np.uint8)[None, :, None], (H, 1, 3))), "no face found"),
    "drawn cartoon face": (_cartoon, (W, H)),
    "face under 40 px": (_tiny_face, "no face found"),
    "grayscale png": (lambda i: _pil_save(i, "gray.png", "L"), (W, H)),
    "grayscale+alpha png": (lambda i: _pil_save(i, "gray-alpha.png", "LA"), (W, H)),
    "rgba png": (lambda i: _pil_save(i, "rgba.png", "RGBA"), (W, H)),
    "palette png": (lambda i: _pil_save(i, "palette.png", "P"), (W, H)),
    "16-bit png": (lambda i: _cv2_write(i, "rgb16.png", lambda: i.portrait()[:, :, ::-1].astype(np.uint16) * 257),
                   (W, H)),
    "16-bit gray png": (_gray16, (W, H)),
    "cmyk jpeg": (lambda i: _pil_save(i, "cmyk.jpg", "CMYK", quality=95), (W, H)),
    "webp": (lambda i: _pil_save(i, "p.webp", quality=90), (W, H)),
    "bmp": (lambda i: _pil_save(i, "p.bmp"), (W, H)),
    "tiff": (lambda i: _pil_save(i, "p.tiff"), (W, H)),
    "name with spaces and accents": (lambda i: _pil_save(i, "mon portrait é.png"), (W, H)),
    "painted face": (_painted, (W, H)),
    "two faces": (_group, (W + W // 2, H)),
    "face cut by the border": (_cut_by_border, (W - int(W * 0.45), H)),
}


@pytest.mark.parametrize("case", list(SOURCE_CASES))
def test_source_image(case: str, inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    build, expected = SOURCE_CASES[case]
    source = build(inputs)
    out = tmp_path / "out.mp4"
    result = run_cli("--source", source, "--driving", inputs.driving_clip(), "--output", out)
    if isinstance(expected, str):
        check.user_error(result, out, expected)
    else:
        assert result.code == 0, result.err
        check.video(out, 6, expected)


@pytest.fixture(scope="module")
def face_tracker() -> Any:
    """MediaPipe in image mode, to find the face in outputs."""
    from facepaint.plugins.trackers.config import TrackerConfig
    from facepaint.plugins.trackers.mediapipe import MediaPipeTracker

    tracker = MediaPipeTracker(TrackerConfig(smoothing=False))
    yield tracker
    tracker.close()


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_source_comes_out_upright(orientation: int, inputs: Any, run_cli: Any, check: Any,
                                               tmp_path: Path, face_tracker: Any) -> None:
    source = _exif_rotated(inputs, f"exif{orientation}.jpg", orientation)
    out = tmp_path / "out.mp4"
    result = run_cli("--source", source, "--driving", inputs.driving_clip(), "--output", out)
    assert result.code == 0, result.err
    frames = check.video(out, 6, (W, H))
    faces = face_tracker.track(frames[0], None)
    assert faces, "no face in the output"
    yaw, pitch, roll = faces[0].rotation
    assert abs(roll) < 15, f"the face is turned by {roll:.0f} degrees"
    assert faces[0].landmarks[:, 1].mean() < H * 0.6  # and not upside down: the face is in the upper part


def test_several_faces_pick_the_second(inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = run_cli("--source", _group(inputs), "--face-index", 1, "--driving", inputs.driving_clip(),
                     "--output", out)
    assert result.code == 0, result.err
    first, *_, last = check.video(out, 6, (W + W // 2, H))
    # The largest face (left) is held exactly; the second (right, smaller) follows the driving.
    assert np.abs(first[:, :W].astype(int) - last[:, :W]).mean() < 0.5
    assert np.abs(first[:, W:].astype(int) - last[:, W:]).mean() > 1.0


@pytest.mark.parametrize("index,words", [(2, "--face-index 2 is out of range: 2 faces found"),
                                         (-1, "--face-index must be >= 0")])
def test_face_index_out_of_range(index: int, words: str, inputs: Any, run_cli: Any, check: Any,
                                 tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    result = run_cli("--source", _group(inputs), "--face-index", index, "--driving", inputs.driving_clip(),
                     "--output", out)
    check.user_error(result, out, words)


DRIVING_IMAGE_CASES: dict[str, tuple[Callable[[Any], Path], Any]] = {
    "zero-byte png": (lambda i: i.bytes_file("empty.png", b""), "is empty (0 bytes)"),
    "truncated png": (lambda i: _truncated(i, ".png"), "is not an image"),
    "folder as png": (lambda i: i.folder_named("shots.png"), "is not a file"),
    "no face": (lambda i: _cv2_write(i, "tiny.png", lambda: np.full((16, 16, 3), 90, np.uint8)),
                "no face found in the driving image"),
    "exif rotated": (lambda i: _exif_rotated(i, "exif6.jpg", 6), (W, H)),
    "grayscale": (lambda i: _pil_save(i, "gray.png", "L"), (W, H)),
    "webp": (lambda i: _pil_save(i, "p.webp", quality=90), (W, H)),
    "bmp": (lambda i: _pil_save(i, "p.bmp"), (W, H)),
}


@pytest.mark.parametrize("case", list(DRIVING_IMAGE_CASES))
def test_driving_image(case: str, inputs: Any, run_cli: Any, check: Any, tmp_path: Path) -> None:
    import cv2

    build, expected = DRIVING_IMAGE_CASES[case]
    out = tmp_path / "out.png"
    result = run_cli("--source", inputs.portrait_file(), "--driving", build(inputs), "--output", out)
    if isinstance(expected, str):
        check.user_error(result, out, expected)
    else:
        assert result.code == 0, result.err
        assert cv2.imread(str(out)).shape[:2] == (expected[1], expected[0])
