"""The offline render end to end on the shared media, with the real tracker and engine.

Clips are cut short (30 frames) so the file runs in well under two minutes on a loaded machine.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facepaint.plugins.sinks.file import even_size
from facepaint.runtime.cli import main

CLIP_FRAMES = 30


def _real_parts_or_skip() -> None:
    pytest.importorskip("mediapipe")
    try:
        from facepaint.engine.reenactment import ReenactmentEngine  # noqa: F401
        from facepaint.plugins.trackers.mediapipe import MediaPipeTracker  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"real tracker/engine not available: {exc}")


@pytest.fixture(scope="module")
def short_clip(talking_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 30 frames of lp_d10.mp4 (re-encoded) with its AAC audio copied for that second."""
    path = tmp_path_factory.mktemp("clip") / "d10_30.mp4"
    with av.open(str(talking_clip)) as src, av.open(str(path), "w") as out:
        vin, ain = src.streams.video[0], src.streams.audio[0]
        vout = out.add_stream("libx264", rate=vin.average_rate, options={"preset": "ultrafast", "crf": "18"})
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        aout = out.add_stream_from_template(ain)
        for i, frame in enumerate(src.decode(vin)):
            if i == CLIP_FRAMES:
                break
            frame.pts, frame.time_base = i, 1 / vin.average_rate
            out.mux(vout.encode(frame.reformat(format="yuv420p")))
        out.mux(vout.encode(None))
        end = CLIP_FRAMES / vin.average_rate
        src.seek(0)
        for pkt in src.demux(ain):
            if pkt.dts is not None and pkt.pts * pkt.time_base < end:
                pkt.stream = aout
                out.mux(pkt)
    return path


def _probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return {"frames": sum(1 for _ in c.decode(v)), "rate": v.average_rate, "size": (v.width, v.height),
                "audio": [s.codec_context.name for s in c.streams.audio]}


def test_render_keeps_frames_fps_audio_and_source_size(short_clip, portrait, tmp_path, capsys) -> None:
    _real_parts_or_skip()
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    code = main(["--source", str(portrait), "--driving", str(short_clip), "--output", str(out),
                 "--stats-json", str(stats)])
    err = capsys.readouterr().err
    assert code == 0, err
    info = _probe(out)
    source_size = cv2.imread(str(portrait)).shape[1::-1]  # 910x1137: odd height, padded by one row
    assert info == {"frames": CLIP_FRAMES, "rate": 30, "size": even_size(tuple(source_size)), "audio": ["aac"]}
    summary = err.strip().splitlines()[-1]
    assert summary.startswith(f"facepaint-live: wrote {out}: {CLIP_FRAMES} frames") and "without a face" in summary
    data = json.loads(stats.read_text())
    assert data["frames_out"] == CLIP_FRAMES and data["frames_without_face"] == 0 and data["dropped"] == 0
    assert {"decode", "track", "smooth", "render", "encode"} == set(data["stages"])


def test_driving_without_audio(media, tmp_path, capsys) -> None:
    _real_parts_or_skip()
    out = tmp_path / "out.mkv"
    code = main(["--source", str(media / "portraits" / "lp_s42.jpg"), "--driving",
                 str(media / "driving" / "lp_d0.mp4"), "--output", str(out), "--quiet", "--duration", "1.0"])
    assert code == 0, capsys.readouterr().err
    info = _probe(out)
    assert info == {"frames": 25, "rate": 25, "size": (512, 512), "audio": []}


def test_still_driving_to_png(talking_clip, media, tmp_path, capsys) -> None:
    _real_parts_or_skip()
    with av.open(str(talking_clip)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="bgr24")
    driving = tmp_path / "face.jpg"
    cv2.imwrite(str(driving), frame)
    out = tmp_path / "out.png"
    source = media / "portraits" / "biden2.jpg"
    code = main(["--source", str(source), "--driving", str(driving), "--output", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert cv2.imread(str(out)).shape == cv2.imread(str(source)).shape  # full size, no 512 cap


def test_real_tracker_finds_no_face_in_a_blank_portrait(short_clip, tmp_path, capsys) -> None:
    _real_parts_or_skip()
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 180, np.uint8))
    out = tmp_path / "o.mp4"
    code = main(["--source", str(blank), "--driving", str(short_clip), "--output", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("facepaint-live: error: no face found") and not out.exists()


def test_ctrl_c_in_a_real_run_leaves_nothing(short_clip, portrait, tmp_path) -> None:
    """SIGINT to the console script mid-render: exit code 130, no output, no temporary file."""
    _real_parts_or_skip()
    script = Path(sys.executable).with_name("facepaint-live")
    if not script.exists():
        pytest.skip("console script not installed in this environment")
    out = tmp_path / "o.mp4"
    # preexec: a test run started in the background hands children SIGINT ignored; a terminal does not.
    proc = subprocess.Popen([str(script), "--source", str(portrait), "--driving", str(short_clip),
                             "--output", str(out), "--quiet"], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".o.mp4.*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the temporary file appears once rendering has begun
    if proc.poll() is not None:
        pytest.skip("the render finished before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
