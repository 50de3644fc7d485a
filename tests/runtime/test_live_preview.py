"""The real preview window under Xvfb: HUD frames shown, hotkeys typed with xdotool, window close.

Each check runs in a child process under ``xvfb-run``: Qt binds to its display for the life of the
process, so the test process itself never opens a window.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not (shutil.which("xvfb-run") and shutil.which("xdotool")),
    reason="needs xvfb-run and xdotool (apt-get install xvfb xdotool)",
)

SESSION = textwrap.dedent(
    """
    import json, subprocess, threading, time
    import numpy as np
    from facepaint.plugins.base import Frame
    from facepaint.plugins.sinks.preview import PreviewSink
    from facepaint.plugins.sources.paced import PacedFileSource
    from facepaint.runtime.live import LiveParts, LiveRun
    from facepaint.runtime.session import Driver

    class Clip:
        fps, size = 25.0, (64, 48)
        def __iter__(self):
            for i in range(10_000):
                yield Frame(np.full((48, 64, 3), 60, np.uint8), i, i / 25, 0.0)
        def rewind(self):
            pass
        def close(self):
            pass

    class Tracker:
        def track(self, image, ts):
            return []
        def close(self):
            pass

    class Engine:
        recalibrated = 0
        following_neutral = False
        def render(self, frame, face, t):
            return np.full((40, 30, 3), 128, np.uint8)
        def recalibrate(self):
            self.recalibrated += 1
        def close(self):
            pass

    class Session:
        def __init__(self, tracker, engine):
            self.tracker, self.engine = tracker, engine
        def driver(self):
            return Driver(self.tracker, self.engine, None)
        def close(self):
            pass

    def type_keys(keys):
        time.sleep(1.0)
        wid = subprocess.run(["xdotool", "search", "--name", "fp-live"], capture_output=True,
                             text=True).stdout.split()[-1]
        for key in keys:
            subprocess.run(["xdotool", "windowfocus", "--sync", wid, "key", key], check=True)
            time.sleep(0.3)

    preview = PreviewSink("fp-live")
    engine = Engine()
    parts = LiveParts(PacedFileSource("c", loop=True, opener=lambda p: Clip()), Session(Tracker(), engine), [],
                      preview, (64, 48))
    threading.Thread(target=type_keys, args=(KEYS,), name="keys", daemon=True).start()
    run = LiveRun(parts, duration=15.0)
    start = time.monotonic()
    stats = run.run()
    left = [t.name for t in threading.enumerate() if t.name.startswith("facepaint-")]
    print(json.dumps({"elapsed": time.monotonic() - start, "shown": preview.shown, "left": left,
                      "recalibrated": engine.recalibrated, "passthrough": run.controls.passthrough,
                      "paused": run.controls.paused, "frames_out": stats["frames_out"]}))
    """
)


def run_session(keys: list[str]) -> dict:
    script = f"KEYS = {keys!r}\n" + SESSION
    proc = subprocess.run(["xvfb-run", "-a", sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_hotkeys_then_q_quits_cleanly():
    result = run_session(["c", "p", "space", "q"])
    assert result["elapsed"] < 10 and result["left"] == []
    assert result["shown"] > 5 and result["frames_out"] > 5
    assert result["recalibrated"] == 1 and result["passthrough"] and result["paused"]


def test_escape_quits():
    result = run_session(["Escape"])
    assert result["elapsed"] < 10 and result["left"] == [] and not result["paused"]


WINDOW = textwrap.dedent(
    """
    import json, threading
    import cv2, numpy as np
    from facepaint.engine.errors import SinkError
    from facepaint.plugins.base import Frame
    from facepaint.plugins.sinks.preview import HudInfo, PreviewSink

    sink = PreviewSink("fp-win")
    writer = threading.Thread(target=sink.write, args=(Frame(np.zeros((48, 64, 3), np.uint8), 0, 0.0, 0.0),))
    writer.start(); writer.join()
    first = sink.pump(HudInfo(fps=25.0, latency_ms=40.0, dropped=3, face=False, paused=True))
    errors = []
    def other():
        try:
            sink.pump()
        except SinkError as exc:
            errors.append(str(exc))
    t = threading.Thread(target=other); t.start(); t.join()
    cv2.destroyWindow("fp-win")  # what closing the window with the mouse does
    after = sink.pump()
    sink.close(); sink.close()
    print(json.dumps({"first": first, "shown": sink.shown, "errors": errors, "after": after}))
    """
)


def test_window_close_means_quit_and_ui_stays_on_its_thread():
    proc = subprocess.run(["xvfb-run", "-a", sys.executable, "-c", WINDOW], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["first"] is None and result["shown"] == 1 and result["after"] == "quit"
    assert len(result["errors"]) == 1 and "thread that created the window" in result["errors"][0]
