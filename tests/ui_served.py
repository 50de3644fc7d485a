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


def chrome(width: int = 1600, height: int = 1000):  # noqa: ANN201 - a selenium WebDriver
    """Headless Debian chromium through its chromedriver, logging the page's network requests.

    Raises:
        RuntimeError: chromium, chromedriver or selenium is missing (the reason, for a skip).
    """
    import shutil

    driver_path = shutil.which("chromedriver")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if driver_path is None or binary is None:
        raise RuntimeError("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise RuntimeError("selenium is not installed (the [test] extra)") from None
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--mute-audio"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def requested_urls(driver) -> list[str]:  # noqa: ANN001 - a selenium WebDriver
    """Every URL the page asked for so far (HTTP and WebSocket), from chromium's performance log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def still_clip(frame_source: Path, out: Path, frames: int = 50, fps: float = 25.0) -> Path:
    """A clip of ``frame_source``'s first frame held still: the output only moves when a setting does."""
    import cv2

    capture = cv2.VideoCapture(str(frame_source))
    ok, image = capture.read()
    capture.release()
    if not ok:
        raise RuntimeError(f"cannot read {frame_source}")
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (image.shape[1], image.shape[0]))
    for _ in range(frames):
        writer.write(image)
    writer.release()
    return out
