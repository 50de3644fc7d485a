"""``--faces`` on a video source (issue 22): two real clips side by side, built here, never committed.

lp_s18 and lp_s32 (two women, mouths shut throughout) are cropped around their faces and put side by
side at half size, 10 frames a second (so 1 s, the shortest source allowed, is 10 frames). The
driver is the widest mouth of lp_d10 written as a still: every face's mouth must open in every
frame where that face is. The gap clip blanks face 1 for a stretch: face 1 is left as it is there
and rendered again when it is back, and face 0 never stops.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import fakes
from facepaint.engine.geometry import mouth_openness
from facepaint.engine.topology import get_topology
from facepaint.plugins.base import load_plugin
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.runtime.cli import main
from facepaint.runtime.evaluation.streams import iter_frames

pytestmark = pytest.mark.slow

FPS = 10
GAP = range(6, 13)  # frames of the gap clip where face 1 (the right half) is blanked
HALF = 320  # each face's half of the 640x360 frame


def frames(path: Path | str, n: int | None = None) -> list[np.ndarray]:
    return [f for _, f in zip(range(n or 10**6), iter_frames(str(path)), strict=False)]


def write_clip(path: Path, images: list[np.ndarray], fps: int = FPS) -> Path:
    return fakes.write_clip(path, images, fps)


def two_faces(media: Path, n: int) -> list[np.ndarray]:
    """lp_s18 | lp_s32, each cropped 640x720 around its face and halved: 640x360 frames."""
    left = frames(media / "extra" / "lp_s18.mp4", n)
    right = frames(media / "extra" / "lp_s32.mp4", n)
    half = (HALF, 360)
    return [np.concatenate([cv2.resize(a[:, 416:1056], half, interpolation=cv2.INTER_AREA),
                            cv2.resize(b[:, 310:950], half, interpolation=cv2.INTER_AREA)], 1)
            for a, b in zip(left, right, strict=True)]


@pytest.fixture(scope="module")
def clips(media: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("two")
    images = two_faces(media, 20)
    gap = [im.copy() for im in images]
    for i in GAP:
        gap[i][:, HALF:] = 90
    still = folder / "open.png"
    cv2.imwrite(str(still), frames(media / "driving" / "lp_d10.mp4", 101)[100][:, :, ::-1])  # jawOpen 0.88
    return {"two": write_clip(folder / "two.mp4", images[:10]), "gap": write_clip(folder / "gap.mp4", gap),
            "open": still}


@pytest.fixture(scope="module")
def judge() -> Iterator:
    """An image-mode tracker that reports both faces of a frame."""
    with contextlib.closing(load_plugin("facepaint.trackers", "mediapipe")(TrackerConfig(smoothing=False))) as t:
        yield t


def mouth(judge, image: np.ndarray, side: int) -> float | None:
    """Inner-lip gap over width of the face in the left (0) or right (1) half; None: no face there."""
    found = [f for f in judge.track(image, None) if (f.landmarks[:, 0].mean() >= HALF) == bool(side)]
    if not found:
        return None
    return mouth_openness(np.asarray(found[0].landmarks), get_topology(found[0].topology))


def render(*args: str) -> tuple[int, dict]:
    stats = Path(args[args.index("--output") + 1]).with_suffix(".json")
    code = main(["--quiet", "--overwrite", "--stats-json", str(stats), *args])
    return code, json.loads(stats.read_text()) if code == 0 else {}


def test_every_face_of_the_source_video_opens_its_mouth(clips, judge, tmp_path) -> None:
    out = tmp_path / "all.mp4"
    code, stats = render("--source", str(clips["two"]), "--faces", "all", "--driving", str(clips["open"]),
                         "--output", str(out))
    assert code == 0 and stats["faces"] == "faces 0,1" and stats["frames_written"] == 10
    got, src = frames(out), frames(clips["two"])
    for side in (0, 1):
        before = [mouth(judge, im, side) for im in src[::3]]
        after = [mouth(judge, im, side) for im in got[::3]]
        assert all(b is not None and a is not None and a > b + 0.15 for a, b in zip(after, before, strict=True)), (
            side, before, after)


def test_faces_1_changes_only_face_1(clips, tmp_path) -> None:
    out = tmp_path / "one.mp4"
    assert render("--source", str(clips["two"]), "--faces", "1", "--driving", str(clips["open"]),
                  "--output", str(out))[0] == 0
    got, src = frames(out), frames(clips["two"])
    for a, b in zip(got, src, strict=True):
        left = np.abs(a[:, :HALF - 8].astype(int) - b[:, :HALF - 8]).mean()
        face1 = np.abs(a[180:300, HALF + 80:].astype(int) - b[180:300, HALF + 80:]).mean()  # her mouth and chin
        assert left < 2.0 and face1 > left + 1.5, (left, face1)  # face 0: the source up to the encoder's noise


def test_a_face_absent_for_a_while_is_left_and_comes_back(clips, judge, tmp_path) -> None:
    out = tmp_path / "gap.mp4"
    code, stats = render("--source", str(clips["gap"]), "--faces", "all", "--driving", str(clips["open"]),
                         "--output", str(out))
    assert code == 0 and stats["face_frames_absent"] == {"0": 0, "1": len(GAP)}
    assert f"face 1 absent from {len(GAP)} frames" in stats["faces"]
    got, src = frames(out), frames(clips["gap"])
    for i in GAP:  # the blank half is left as it is; face 0 is rendered in the same frames
        assert np.abs(got[i][:, HALF:].astype(int) - src[i][:, HALF:]).mean() < 2.0  # up to the encoder
        assert mouth(judge, got[i], 0) > mouth(judge, src[i], 0) + 0.15
    back = GAP.stop + 2
    assert mouth(judge, got[back], 1) > mouth(judge, src[back], 1) + 0.15  # face 1 followed again


def test_a_face_number_beyond_the_faces_found_is_one_line_and_no_file(clips, tmp_path, capsys) -> None:
    out = tmp_path / "nine.mp4"
    code = main(["--source", str(clips["two"]), "--faces", "0,9", "--driving", str(clips["open"]),
                 "--output", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert "--faces 0,9 is out of range" in err[0] and "2 faces" in err[0]


def test_batch_and_live_take_faces_on_a_video_source(clips, media, tmp_path) -> None:
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f'source,driving,faces\n{clips["two"]},{clips["open"]},"0,1"\n')
    renders = tmp_path / "renders"
    assert main(["batch", str(jobs), "--out", str(renders), "--quiet"]) == 0
    (written,) = renders.glob("*.mp4")
    assert len(frames(written)) == 10
    stats = tmp_path / "live.json"
    assert main(["--source", str(clips["two"]), "--faces", "all", "--cam", str(media / "driving" / "lp_d10.mp4"),
                 "--no-vcam", "--duration", "1.5", "--stats-json", str(stats)]) == 0
    assert json.loads(stats.read_text())["frames_out"] >= 5


def test_eval_judges_each_face_of_the_source_video(clips, media) -> None:
    pytest.importorskip("dlib")
    from facepaint.runtime.evaluation.quality import EvalConfig, evaluate

    report = evaluate(EvalConfig(driving=str(media / "driving" / "lp_d10.mp4"), source=str(clips["two"]),
                                 faces="all", every=5))
    assert list(report["faces"]) == ["0", "1"]
    for face in report["faces"].values():
        identity = face["metrics"]["identity"]  # against the same square of the source video's own frames
        assert face["frames"] == 10 and identity["frames_judged"] == 2 and identity["aed_median"] < 0.6


def mixed_sizes(path: Path, first: list[np.ndarray], then: list[np.ndarray]) -> Path:
    """One clip whose frames change size part-way: two MPEG-TS segments joined (TS is made to be
    cut and joined; the decoder reads both, as a broadcast recording that changes resolution)."""
    data = b""
    for i, images in enumerate((first, then)):
        segment = path.with_name(f"part{i}.ts")
        with av.open(str(segment), "w", format="mpegts") as out:
            stream = out.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
            for im in images:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(im), format="rgb24")))
            out.mux(stream.encode(None))
        data += segment.read_bytes()
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", ["short", "no_face", "resolution", "resolution one face"])
def test_bad_source_videos_with_faces_exit_2_with_one_line_and_no_file(clips, tmp_path, capsys, case) -> None:
    images = frames(clips["gap"])
    source = tmp_path / "src.mp4"
    if case.startswith("resolution"):  # 1.2 s at 640x360, then 1.2 s at 480x270
        mixed_sizes(source, images[:12], [cv2.resize(im, (480, 270)) for im in images[:12]])
    else:
        write_clip(source, images[:9] if case == "short" else [np.full_like(im, 90) for im in images])
    out = tmp_path / "out.mp4"
    faces = [] if case == "resolution one face" else ["--faces", "all"]
    code = main(["--source", str(source), *faces, "--driving", str(clips["open"]), "--output", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists(), err
    words = {"short": "1 s", "no_face": "no face"}.get(case, "changes resolution at frame 12")
    assert words in err[0]
