"""A ``facepaint-live ui`` server on a free loopback port, for the page's tests (tests/ui)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

PORTRAIT = "portraits/obama.jpg"
CLIP = "driving/lp_d0.mp4"  # 25 fps, one face, calm start


class Served:
    """A running server: its base URL, its ``UiApp`` and a small JSON client."""

    def __init__(self, url: str, ui, token: str | None, media: Path) -> None:
        self.url, self.ui, self.token, self.media = url, ui, token, media

    def call(self, path: str, body: dict | None = None, token: str | None = "same") -> tuple[int, dict]:
        token = self.token if token == "same" else token
        url = self.url + path + (("&" if "?" in path else "?") + f"token={token}" if token else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                return exc.code, json.loads(text)
            except ValueError:
                return exc.code, {"text": text.decode()}

    def live_values(self, **extra: object) -> dict:
        return {"--source": str(self.media / PORTRAIT), "--cam": str(self.media / CLIP), "--loop": True, **extra}


def serve(tmp_path: Path, media: Path, token: str | None = None):  # noqa: ANN201 - a generator of Served
    import uvicorn

    from facepaint.runtime.ui.files import Files
    from facepaint.runtime.ui.server import make_app

    app, ui = make_app(Files(tmp_path / "ui"), token=token)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", ui, token, media)
    finally:
        server.should_exit = True
        thread.join(15)


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
