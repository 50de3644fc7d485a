"""Generated bad (and unusual but valid) inputs for the hardening suite, built once per session.

Nothing here is committed media: every file is made from the shared portraits and clips (or from
nothing) with OpenCV, Pillow, PyAV and numpy into a session temporary folder, the first time a test
asks for it. ``run_cli`` runs the real command in-process and captures both Python's and the native
libraries' stderr (file descriptor 2), so a libpng or FFmpeg message counts as a second line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

PORTRAIT_SIZE = (256, 320)  # (width, height) of the downscaled portraits: renders stay fast
DRIVING_SIZE = (192, 192)


@dataclasses.dataclass
class CliResult:
    """Exit code and captured output of one ``main()`` call."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.err.splitlines() if line.strip()]


def write_video(path: Path, frames: Sequence[np.ndarray], *, codec: str = "libx264", pix_fmt: str = "yuv420p",
                rate: int | Fraction = 25, fmt: str | None = None, pts: Sequence[int] | None = None,
                time_base: Fraction | None = None, rotation: int | None = None,
                options: dict[str, str] | None = None) -> Path:
    """Encode RGB ``frames`` with PyAV (any codec, pixel format, timestamps or display rotation)."""
    import av

    h, w = frames[0].shape[:2] if frames else (48, 64)
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, image in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            vf.pts = i if pts is None else pts[i]
            if time_base is not None:
                vf.time_base = time_base
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return path


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame of a video as RGB (what a viewer sees: display rotation is not applied)."""
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class Inputs:
    """Generated files by name, each built on first use into one session folder.

    Args:
        folder: Where the files go.
        media: The shared media folder (portraits and clips the files are made from).
    """

    def __init__(self, folder: Path, media: Path) -> None:
        self.folder, self.media = folder, media
        self._cache: dict[str, Any] = {}

    def get(self, name: str, build: Callable[[Path], Any], filename: str | None = None) -> Any:
        """The input called ``name``: ``build(path)`` runs once and returns the path (or a value)."""
        if name not in self._cache:
            self._cache[name] = build(self.folder / (filename or name))
        return self._cache[name]

    # ---- raw material ----

    def portrait(self, name: str = "obama.jpg", size: tuple[int, int] = PORTRAIT_SIZE) -> np.ndarray:
        """A shared portrait, RGB, downscaled to ``size``."""
        import cv2

        def build(_: Path) -> np.ndarray:
            bgr = cv2.imread(str(self.media / "portraits" / name))
            return resize(bgr[:, :, ::-1], size)

        return self.get(f"rgb:{name}:{size}", build)

    def driving_frames(self, count: int = 8, size: tuple[int, int] = DRIVING_SIZE) -> list[np.ndarray]:
        """The first ``count`` frames of the talking clip, RGB, resized to ``size``."""
        import av

        def build(_: Path) -> list[np.ndarray]:
            frames = []
            with av.open(str(self.media / "driving" / "lp_d10.mp4")) as c:
                for f in c.decode(video=0):
                    frames.append(resize(f.to_ndarray(format="rgb24"), size))
                    if len(frames) == count:
                        break
            return frames

        return self.get(f"frames:{count}:{size}", build)

    # ---- common files ----

    def portrait_file(self, suffix: str = ".png") -> Path:
        """The downscaled portrait written as an ordinary image file."""
        import cv2

        def build(path: Path) -> Path:
            cv2.imwrite(str(path), self.portrait()[:, :, ::-1])
            return path

        return self.get(f"portrait{suffix}", build)

    def driving_clip(self, count: int = 6) -> Path:
        """An ordinary H.264 driving clip of ``count`` frames."""
        return self.get(f"driving{count}.mp4", lambda p: write_video(p, self.driving_frames(count)))

    def bytes_file(self, name: str, data: bytes) -> Path:
        """A file holding ``data``."""
        def build(path: Path) -> Path:
            path.write_bytes(data)
            return path

        return self.get(name, build)

    def folder_named(self, name: str) -> Path:
        """A folder whose name looks like a file."""
        def build(path: Path) -> Path:
            path.mkdir()
            return path

        return self.get(name, build)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Inputs:
    """The session's generated inputs (skipped without the shared media)."""
    return Inputs(tmp_path_factory.mktemp("hardening-inputs"), media)


@pytest.fixture()
def run_cli(capfd: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``facepaint-live`` in-process with ``--quiet``; returns its code and captured output."""
    from facepaint.runtime.cli import main

    def run(*argv: Any, quiet: bool = True) -> CliResult:
        capfd.readouterr()
        args = [str(a) for a in argv] + (["--quiet"] if quiet and argv and argv[0] not in ("eval", "bench") else [])
        try:
            code = main(args)
        except SystemExit as exc:  # argparse ends the program from inside main(), as the script would
            code = exc.code
        captured = capfd.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def assert_user_error(result: CliResult, output: Path | None, *words: str) -> str:
    """Exit code 2, exactly one stderr line (the error), no traceback, nothing at ``output``."""
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    assert len(result.lines) == 1, result.err
    line = result.lines[0]
    assert line.startswith("facepaint-live: error: "), line
    for word in words:
        assert word in line, line
    if output is not None:
        assert not output.exists(), f"{output} was left behind"
        assert not [p for p in output.parent.glob(f".{output.name}.*") if p.name.endswith(output.suffix)]
    return line


def assert_video(path: Path, frames: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """``path`` is a complete video of ``frames`` frames (and ``size`` (w, h), even-padded)."""
    assert path.is_file(), f"{path} was not written"
    got = decoded_frames(path)
    assert len(got) == frames
    if size is not None:
        w, h = size
        assert got[0].shape[:2] == (h + h % 2, w + w % 2)
    return got


@pytest.fixture(scope="session")
def check() -> Any:
    """The helpers above for test modules (a conftest cannot be imported under importlib mode)."""
    import types

    return types.SimpleNamespace(user_error=assert_user_error, video=assert_video, write_video=write_video,
                                 decoded=decoded_frames, resize=resize)
