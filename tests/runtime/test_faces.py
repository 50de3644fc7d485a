"""``--faces``: two real portraits side by side, both driven by one clip, composed onto one frame."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from facepaint.engine.errors import ConfigError
from facepaint.engine.faces import FaceGroup, parse_faces
from facepaint.engine.geometry import mouth_openness
from facepaint.engine.topology import get_topology
from facepaint.plugins.base import Frame, load_plugin
from facepaint.plugins.trackers.config import TrackerConfig
from facepaint.runtime.batch.jobs import read_jobs
from facepaint.runtime.cli import main
from facepaint.runtime.config import build_app_config
from facepaint.runtime.evaluation.streams import iter_frames
from facepaint.runtime.session import Rendered, Session

FRAMES = 75  # lp_d10 opens its mouth wide within its first 2.5 s
GROUP = ("lp_s42", "lp_s12")  # a square and a portrait-format photo: two faces of different size


def test_parse_faces() -> None:
    assert parse_faces("all") == "all" and parse_faces(" 0,2 ") == (0, 2)
    for bad in ("", "x", "1,1", "-1", "0;2"):
        with pytest.raises(ConfigError, match="--faces"):
            parse_faces(bad)


def test_config_refuses_faces_with_face_index_and_bad_keys() -> None:
    base = {"source": "g.jpg", "driving": "d.mp4", "output": "o.mp4"}
    assert build_app_config(base, {"faces": [0, 2]}).faces == (0, 2)
    assert build_app_config(base, {"faces": "all"}).faces == "all"
    with pytest.raises(ConfigError, match="not both"):
        build_app_config(base, {"faces": "all", "face_index": 1})
    with pytest.raises(ConfigError, match="faces must be"):
        build_app_config(base, {"faces": "0,2"})  # TOML takes a list: [0, 2]


@pytest.fixture(scope="module")
def group(media: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The two portraits scaled to one height and put side by side (built here: no media committed)."""
    tiles = []
    for name in GROUP:
        image = cv2.imread(str(media / "portraits" / f"{name}.jpg"))
        scale = 512 / image.shape[0]
        tiles.append(cv2.resize(image, (round(image.shape[1] * scale), 512), interpolation=cv2.INTER_AREA))
    path = tmp_path_factory.mktemp("group") / "group.png"
    cv2.imwrite(str(path), np.concatenate(tiles, 1))
    return path, cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _session(group, clip: Path, faces) -> Session:
    config = build_app_config({"source": str(group[0]), "driving": str(clip), "output": "unused.mp4", "faces": faces,
                               "engine": {"transformer": {"reference": "first"}}})
    return Session(config, live=False, image=group[1])


def _drive(session: Session, clip: Path) -> list[Rendered]:
    frames = (Frame(image=rgb, index=i, pts=i / 30, captured_at=0.0)
              for i, rgb in zip(range(FRAMES), iter_frames(str(clip)), strict=False))
    return list(session.driver().run(frames))


@pytest.fixture(scope="module")
def judge() -> Iterator:
    """An image-mode tracker that reports both faces of an output frame."""
    with contextlib.closing(load_plugin("facepaint.trackers", "mediapipe")(TrackerConfig(smoothing=False))) as t:
        yield t


def _mouths(judge, image: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Inner-lip gap over width of the face nearest each centre."""
    found = judge.track(image, None)
    out = []
    for centre in centres:
        face = min(found, key=lambda f: float(np.linalg.norm(f.landmarks[:, :2].mean(0) - centre)))
        out.append(mouth_openness(np.asarray(face.landmarks), get_topology(face.topology)))
    return np.array(out)


@pytest.fixture(scope="module")
def all_faces(group, talking_clip) -> Iterator[tuple[Session, list[Rendered]]]:
    with _session(group, talking_clip, "all") as session:
        yield session, _drive(session, talking_clip)


def _face_box(face, shape, grow: float = 0.15) -> tuple[slice, slice]:
    lo, hi = face.landmarks[:, :2].min(0), face.landmarks[:, :2].max(0)
    pad = grow * (hi - lo)
    x0, y0 = np.maximum(0, lo - pad).astype(int)
    x1, y1 = np.minimum([shape[1], shape[0]], hi + pad).astype(int)
    return slice(y0, y1), slice(x0, x1)


def test_both_mouths_open_when_the_driver_opens_its_mouth(all_faces, judge) -> None:
    session, rendered = all_faces
    assert isinstance(session.engine, FaceGroup) and session.engine.indices == (0, 1)
    faces = session.portrait.faces
    centres = np.array([f.landmarks[:, :2].mean(0) for f in faces])
    jaw = np.array([r.face.blendshape("jawOpen") if r.face else 0.0 for r in rendered])
    wide = int(np.argmax(jaw))
    assert jaw[wide] > 0.3, "the driving clip was expected to open its mouth"
    at_rest = _mouths(judge, session.portrait.image, centres)
    opened = _mouths(judge, rendered[wide].output, centres)
    # Both mouths open by a visible amount (the source mouths are near shut: gaps under 0.1 width).
    assert np.all(opened > at_rest + 0.15), (at_rest, opened)


def test_one_failing_face_is_left_as_it_is(all_faces) -> None:
    session, rendered = all_faces
    group = session.engine
    assert isinstance(group, FaceGroup)
    broken = next(f for f in group.faces if f.index == 1)

    def fail(*_args: object) -> np.ndarray:
        raise RuntimeError("face 1 cannot be rendered")

    item = max(rendered, key=lambda r: r.face.blendshape("jawOpen") if r.face else 0.0)
    broken.engine.render = fail  # type: ignore[method-assign]
    try:
        out = group.render(item.frame.image, item.face, item.frame.pts)
    finally:
        del broken.engine.render
    source = session.portrait.image
    rows, cols = _face_box(session.portrait.faces[1], source.shape)
    assert np.array_equal(out[rows, cols], source[rows, cols])  # face 1 exactly as in the source
    rows, cols = _face_box(session.portrait.faces[0], source.shape)
    assert np.abs(out[rows, cols].astype(int) - source[rows, cols]).mean() > 2  # face 0 still moves
    assert group.failures == {1: (1, "RuntimeError: face 1 cannot be rendered")}
    assert "face 1 left as is in 1 frames" in group.describe()
    group.reset()
    assert group.failures == {}


def test_faces_0_changes_only_face_0(group, talking_clip) -> None:
    with _session(group, talking_clip, [0]) as session:
        rendered = _drive(session, talking_clip)
        source = session.portrait.image
        other = _face_box(session.portrait.faces[1], source.shape)
        mine = _face_box(session.portrait.faces[0], source.shape)
    moved = max(np.abs(r.output[mine].astype(int) - source[mine]).mean() for r in rendered)
    assert moved > 3
    for r in rendered:
        assert np.abs(r.output[other].astype(int) - source[other]).max() <= 2


def test_faces_9_on_two_faces_is_one_line_and_exit_2(group, talking_clip, tmp_path, capsys) -> None:
    out = tmp_path / "out.mp4"
    code = main(["--source", str(group[0]), "--faces", "9", "--driving", str(talking_clip), "--output", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "2 faces found" in err and "--faces 9" in err


def test_batch_job_files_take_faces(tmp_path: Path) -> None:
    (tmp_path / "jobs.csv").write_text('source,driving,faces\ng.jpg,a.mp4,"0,2"\ng.jpg,b.mp4,all\n')
    (tmp_path / "jobs.jsonl").write_text('{"source": "g.jpg", "driving": "a.mp4", "faces": [1]}\n')
    csv, jsonl = read_jobs(tmp_path / "jobs.csv", tmp_path), read_jobs(tmp_path / "jobs.jsonl", tmp_path)
    assert [j.config.faces for j in csv + jsonl] == [(0, 2), "all", (1,)]
    (tmp_path / "bad.csv").write_text('source,driving,faces,face_index\ng.jpg,a.mp4,all,1\n')
    with pytest.raises(ConfigError, match="not both"):
        read_jobs(tmp_path / "bad.csv", tmp_path)


def test_offline_and_live_commands_take_faces(group, talking_clip, media, tmp_path, capsys) -> None:
    out = tmp_path / "all.mp4"
    assert main(["--source", str(group[0]), "--faces", "all", "--driving", str(talking_clip), "--output", str(out),
                 "--duration", "0.3", "--quiet"]) == 0
    assert out.stat().st_size > 0 and "; faces 0,1" in capsys.readouterr().err
    stats = tmp_path / "live.json"
    assert main(["--source", str(group[0]), "--faces", "0,1", "--cam", str(media / "driving" / "vr_2.mp4"),
                 "--no-vcam", "--duration", "2", "--stats-json", str(stats)]) == 0
    assert json.loads(stats.read_text())["frames_out"] >= 5


@pytest.mark.slow
def test_eval_judges_each_face_against_its_own_source_face(group, talking_clip) -> None:
    pytest.importorskip("dlib")
    from facepaint.runtime.evaluation.quality import EvalConfig, evaluate, summary_lines

    report = evaluate(EvalConfig(driving=str(talking_clip), source=str(group[0]), faces="all", max_frames=45,
                                 every=15))
    faces = report["faces"]
    assert list(faces) == ["0", "1"] and report["metrics"] == faces["0"]["metrics"]
    for face in faces.values():
        assert face["frames"] == 45 and face["metrics"]["identity"]["aed_median"] < 0.6  # her own face, kept
        assert face["metrics"]["expression"]["signals"]["jaw"]["r"] > 0.6  # the driver's jaw, followed
    assert faces["0"]["square_side"] > faces["1"]["square_side"]  # face 0 is the larger
    assert "face 1 (a " in "\n".join(summary_lines(report))
