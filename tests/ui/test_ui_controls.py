"""``facepaint-live ui`` without a browser: the controls, the live run they steer, and the gate.

The live tests run the real pipeline (MediaPipe, the geometric engine) on a real portrait and a
real clip played as a camera, through the page's own HTTP routes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pytest
import pyvirtualcam
from ui_served import serve, wait_for

from facepaint.engine.errors import ConfigError, InputError
from facepaint.plugins.sinks.vcam import missing_vcam_hint
from facepaint.runtime.cli import build_parser
from facepaint.runtime.config import build_app_config, load_toml
from facepaint.runtime.ui import controls
from facepaint.runtime.ui.command import is_loopback
from facepaint.runtime.ui.files import Files
from fakes import RecordingBackend

# ---- the controls come from the CLI's parser ----

def test_every_control_is_a_flag_of_the_main_command():
    flags = {o for a in build_parser()._actions for o in a.option_strings}
    shown = controls.controls()
    assert {c.flag for c in shown} <= flags
    by_flag = {c.flag: c for c in shown}
    assert by_flag["--strength"].range == (0.0, 1.5, 0.05) and by_flag["--strength"].live
    assert by_flag["--tracker"].choices == ("mediapipe", "face-alignment")
    assert by_flag["--no-smoothing"].kind == "switch"
    assert "--source" not in by_flag  # the page's own picker
    assert by_flag["--pose-scale"].help == next(a.help for a in build_parser()._actions if "--pose-scale" in
                                                 a.option_strings)


def test_command_and_toml_read_back_to_the_same_config(tmp_path):
    values = {"--source": "me.jpg", "--cam": "0", "--expression": "happy", "--strength": "0.7",
              "--au": "AU12=0.5,AU4=-0.2", "--pose": "yaw=10", "--regions": "mouth,pose", "--pose-scale": "0.5",
              "--no-smoothing": True, "--loop": False}
    command = controls.command_line(values)
    assert command.startswith("facepaint-live --source me.jpg --cam 0 --expression happy")
    assert "--loop" not in command
    _, layer = controls.parse(values)
    (tmp_path / "s.toml").write_text(controls.to_toml(layer))
    from_toml = build_app_config(load_toml(tmp_path / "s.toml"))  # what --config reads
    assert from_toml == build_app_config(layer)
    assert from_toml.engine.expression.au == (("AU12", 0.5, False), ("AU4", -0.2, True))
    assert from_toml.engine.transformer.regions == ("mouth", "pose")


def test_a_bad_value_is_the_clis_one_line_error():
    with pytest.raises(ConfigError, match="^--pose: unknown axis 'tilt'"):
        controls.parse({"--source": "me.jpg", "--pose": "tilt=3"})
    with pytest.raises(ConfigError, match="invalid choice: 'x'"):
        controls.parse({"--source": "me.jpg", "--tracker": "x"})
    with pytest.raises(ConfigError, match="unknown setting '--rm'"):
        controls.to_argv({"--rm": "-rf"})


# ---- files: uploads and what the page may read ----

def test_uploads_are_checked_and_named_here(tmp_path, portrait):
    files = Files(tmp_path / "ui")
    saved = files.save_upload("../../../evil.jpg", portrait.read_bytes())
    assert saved.parent == tmp_path / "ui" and saved.suffix == ".jpg"
    with pytest.raises(InputError, match="not a readable image"):
        files.save_upload("x.png", b"#!/bin/sh\nrm -rf /\n")
    with pytest.raises(InputError, match="use an image"):
        files.save_upload("x.sh", b"echo")
    with pytest.raises(InputError, match="not a video file"):
        files.save_upload("x.mp4", b"\x00" * 64)
    with pytest.raises(InputError, match="no such file"):
        files.path("../../etc/passwd")


def test_loopback_needs_no_token_and_other_hosts_do():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")


def test_the_token_is_checked_on_every_request_and_websocket(tmp_path, media):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    gen = serve(tmp_path, media, token="s3cret")
    s = next(gen)
    try:
        assert s.call("/api/controls", token=None)[0] == 403
        assert s.call("/api/controls", token="wrong")[0] == 403
        assert s.call("/api/live/stop", {}, token=None)[0] == 403
        assert s.call("/api/controls")[0] == 200
        with urllib.request.urlopen(s.url + "/?token=s3cret") as page:
            assert b"<title>facepaint-live</title>" in page.read()
        ws_url = s.url.replace("http", "ws") + "/ws/preview"
        with pytest.raises((InvalidStatus, ConnectionError, OSError)):
            with connect(ws_url, open_timeout=5) as ws:
                ws.send("0")
                ws.recv(timeout=2)
        with connect(ws_url + "?token=s3cret", open_timeout=5) as ws:
            ws.send("0")
            assert json.loads(ws.recv(timeout=5))["idle"] is True  # nothing running: an idle answer
    finally:
        gen.close()


def test_other_sites_and_rebound_hosts_are_refused(served):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    def post(headers: dict) -> int:
        request = urllib.request.Request(served.url + "/api/live/stop", data=b"{}", method="POST",
                                         headers={"Content-Type": "text/plain", **headers})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    host = served.url.split("//")[1]
    assert post({}) == 200 and post({"Origin": served.url}) == 200
    assert post({"Origin": "https://evil.example"}) == 403  # a page elsewhere posting to us
    assert post({"Host": f"evil.example:{host.split(':')[1]}"}) == 403  # DNS rebinding
    ws_url = served.url.replace("http", "ws") + "/ws/preview"
    with pytest.raises((InvalidStatus, ConnectionError, OSError)):
        with connect(ws_url, origin="https://evil.example", open_timeout=5) as ws:  # reading the camera
            ws.send("0")
            ws.recv(timeout=2)
    with connect(ws_url, origin=served.url, open_timeout=5) as ws:
        ws.send("0")
        assert json.loads(ws.recv(timeout=5))["idle"] is True


def test_path_traversal_reads_nothing(served):
    assert served.call("/api/live/vcam", {"on": True})[1] == {"error": "start the live run first"}
    for path in ("/api/file/..%2F..%2F..%2Fetc%2Fpasswd", "/api/file/%2Fetc%2Fpasswd", "/../../etc/passwd"):
        status, body = served.call(path)
        assert status == 404 and "root:" not in json.dumps(body)


# ---- the live run ----

class FlakyBackend(RecordingBackend):
    """The recording backend, failing to open while ``fail`` is set (no loopback device)."""

    fail = False

    def __init__(self, **kw) -> None:
        if FlakyBackend.fail:
            raise RuntimeError("No v4l2 loopback device found")
        super().__init__(**kw)


@pytest.fixture()
def recording_vcam():
    RecordingBackend.instances.clear()
    FlakyBackend.fail = False
    pyvirtualcam.register_backend("recording", FlakyBackend)
    yield RecordingBackend.instances
    pyvirtualcam.camera.BACKENDS.pop("recording", None)


@pytest.mark.slow
def test_live_controls_reach_the_next_frame(served, recording_vcam):
    s, live = served, served.ui.live
    values = s.live_values(**{"--vcam-backend": "recording", "--size": "320x240"})
    status, body = s.call("/api/live/start", {"values": values})
    assert status == 200 and body["running"], body
    run = live.run
    wait_for(lambda: run.frames_rendered > 3, what="frames")

    # A slider: the gain and the expression are the engine's on the frame after the next.
    status, body = s.call("/api/live/update", {"values": {**values, "--expression-scale": "0.3",
                                                          "--expression": "happy", "--regions": "mouth,pose"}})
    assert body == {"applied": True}
    n = run.frames_rendered
    wait_for(lambda: run.frames_rendered >= n + 2, what="two more frames")
    engine = run.parts.session.engine
    assert engine.config.transformer.expression == 0.3
    assert engine.transformer.config.regions == ("mouth", "pose")
    assert engine.expression.expression == "happy"
    assert live.run is run  # no restart

    # The virtual camera, switched on and off while running, through the registered test backend.
    status, body = s.call("/api/live/vcam", {"on": True})
    assert status == 200 and body["vcam"] and body["device"] == "/dev/video-rec"
    wait_for(lambda: len(recording_vcam[0].frames) >= 3, what="frames in the virtual camera")
    assert recording_vcam[0].frames[0].size == 320 * 240 * 3
    status, body = s.call("/api/live/vcam", {"on": False})
    assert not body["vcam"] and recording_vcam[0].closed == 1
    FlakyBackend.fail = True  # the backend missing: the CLI's one-line fix, and the run goes on
    status, body = s.call("/api/live/vcam", {"on": True})
    assert status == 400 and body["error"].endswith(missing_vcam_hint()) and "\n" not in body["error"]
    assert s.call("/api/live/status")[1]["running"]

    # A bad portrait: one line, and the running pipeline keeps running.
    status, body = s.call("/api/live/start", {"values": {**values, "--source": str(s.media / "MANIFEST.md")}})
    assert status == 400 and "\n" not in body["error"] and "not an image" in body["error"]
    n = run.frames_rendered
    wait_for(lambda: run.frames_rendered > n + 3, what="the old pipeline still rendering")
    assert live.run is run and live.running

    # Pause and passthrough: the hotkeys' actions.
    assert s.call("/api/live/action", {"name": "pause"})[1]["paused"] is True
    assert s.call("/api/live/action", {"name": "rm -rf"})[0] == 400

    status, body = s.call("/api/live/stop", {})
    assert not body["running"] and run.parts.camera._closed



@pytest.mark.slow
def test_a_new_background_reaches_the_next_frames_without_a_restart(served, recording_vcam):
    s, live = served, served.ui.live
    values = s.live_values(**{"--vcam-backend": "recording", "--size": "320x240"})
    assert s.call("/api/live/start", {"values": values})[1]["running"]
    run = live.run
    assert s.call("/api/live/vcam", {"on": True})[1]["vcam"]
    sent = recording_vcam[0].frames
    wait_for(lambda: len(sent) >= 3, what="frames in the virtual camera")

    def corner() -> np.ndarray:  # the portrait's top-left corner (background) in the newest output,
        # letterboxed: the 910x1137 portrait is 192 px wide in the middle of 320
        return sent[-1].reshape(240, 320, 3)[2:8, 66:72].reshape(-1, 3).mean(0)

    own = corner()
    assert not np.allclose(own, (0, 255, 0), atol=40)
    for spec, rgb in (("green", (0, 255, 0)), ("#0000ff", (0, 0, 255)), ("", own)):
        # The plate is made while frames go on (the first one also finds the matte, once);
        # then it is seen within the frames in flight (one per queue), and the run never restarted.
        assert s.call("/api/live/update", {"values": {**values, "--background": spec}})[1] == {"applied": True}
        n = run.frames_rendered
        wait_for(lambda rgb=rgb: np.allclose(corner(), rgb, atol=12), timeout=10, what=f"background {spec!r}")
        assert run.frames_rendered - n <= 4 and live.run is run and live.running
    assert run.parts.session.engine.background is None

    # A background the CLI refuses: its one line, and the run goes on over the one it had.
    status, body = s.call("/api/live/update", {"values": {**values, "--background": "nosuch.png"}})
    assert status == 400 and "not found" in body["error"] and "\n" not in body["error"]
    n = run.frames_rendered
    wait_for(lambda: run.frames_rendered > n + 3, what="the run still rendering")
    assert live.run is run and run.parts.session.engine.background is None
    s.call("/api/live/stop", {})


def test_a_taken_port_is_a_one_line_error():
    import socket

    from facepaint.runtime.ui.command import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^cannot serve on 127.0.0.1:{port} \(Address already in use\)"):
            main(["--no-browser", "--port", str(port)])


@pytest.mark.slow
def test_batch_screen_runs_shows_each_job_and_resumes(served, tmp_path):
    media = served.media
    jobs = tmp_path / "jobs.csv"
    jobs.write_text("source,driving,expression\n"
                    f"{media / 'portraits' / 'obama.jpg'},{media / 'portraits' / 'lp_s10.jpg'},\n"
                    f"{media / 'portraits' / 'obama.jpg'},{media / 'README-missing.jpg'},\n")
    out = tmp_path / "renders"
    status, body = served.call("/api/batch", {"jobs": str(jobs), "out": str(out)})
    assert status == 200 and [j["status"] for j in body["jobs"]] in (["pending"] * 2, ["running", "pending"])
    wait_for(lambda: served.call("/api/batch/status")[1]["state"] != "running", 180, "the batch")
    body = served.call("/api/batch/status")[1]
    done, failed = body["jobs"]
    assert body["state"] == "failed" and done["status"] == "done" and failed["status"] == "failed"
    assert "README-missing.jpg" in failed["error"] and "\n" not in failed["error"]
    with urllib.request.urlopen(f"{served.url}/api/file/{done['file']}") as response:
        assert response.read(8) == b"\x89PNG\r\n\x1a\n"
    # Resume: the finished job is skipped, the failed one tried again.
    served.call("/api/batch", {"jobs": str(jobs), "out": str(out)})
    wait_for(lambda: served.call("/api/batch/status")[1]["state"] != "running", 180, "the second run")
    assert [j["status"] for j in served.call("/api/batch/status")[1]["jobs"]] == ["skipped", "failed"]
    status, body = served.call("/api/batch", {"jobs": str(tmp_path / "nope.csv"), "out": str(out)})
    assert status == 400 and "nope.csv" in body["error"]


@pytest.mark.slow
def test_quality_screen_scores_a_render_beside_its_bounds(served, tmp_path):
    pytest.importorskip("dlib", reason="the [eval] extra is not installed")
    media = served.media
    status, body = served.call("/api/quality", {"source": str(media / "portraits" / "obama.jpg"),
                                                "driving": str(media / "driving" / "lp_d0.mp4"), "max_frames": 8})
    assert status == 200 and body["state"] == "running", body
    wait_for(lambda: served.call("/api/quality/status")[1]["state"] != "running", 300, "the evaluation")
    body = served.call("/api/quality/status")[1]
    assert body["state"] == "done", body
    header = body["lines"][1].split()
    assert header == ["output", "frozen", "pasted"]
    assert any(line.startswith("identity AED") for line in body["lines"])
    served.call("/api/quality", {"source": "", "driving": str(tmp_path / "none.mp4")})  # self-reenactment
    wait_for(lambda: served.call("/api/quality/status")[1]["state"] != "running", 60, "the refusal")
    assert served.call("/api/quality/status")[1]["error"] == f"file not found: {tmp_path / 'none.mp4'}"
    assert served.call("/api/quality", {"driving": "x.mp4", "file": "../../etc/passwd"})[0] == 400


@pytest.mark.slow
def test_render_screen_reports_progress_and_serves_the_video(served):
    media = served.media
    driving = media / "driving" / "lp_d0.mp4"
    status, body = served.call("/api/render", {"values": {"--source": str(media / "portraits" / "obama.jpg"),
                                                          "--driving": str(driving), "--duration": "0.4"}})
    assert status == 200 and body["state"] == "running" and body["total"] > 10, body
    wait_for(lambda: served.call("/api/render/status")[1]["state"] != "running", 120, "the render")
    body = served.call("/api/render/status")[1]
    assert body["state"] == "done" and body["kind"] == "video" and body["frames"] == 10, body
    with urllib.request.urlopen(f"{served.url}/api/file/{body['file']}") as response:
        assert response.read(12)[4:8] == b"ftyp"
    status, body = served.call("/api/render", {"values": {"--source": str(media / "portraits" / "obama.jpg"),
                                                          "--driving": str(media / "nope.mp4")}})
    assert status == 400 and "nope.mp4" in body["error"] and "\n" not in body["error"]
