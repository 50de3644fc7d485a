"""The page's HTTP and WebSocket routes (Starlette), with the token check on every one of them.

Starlette + uvicorn rather than NiceGUI: the page is one static file and a JSON API, frames go as
binary WebSocket messages the page pulls one at a time, and nothing else runs on the 2 cores (no
per-client Vue state on the server). Every route answers a bad input with ``{"error": one line}``
(the CLI's message) and status 400; nothing here stops a running pipeline.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from facepaint.engine.errors import FacepaintError
from facepaint.engine.expression import AU_BLENDSHAPES, EXPRESSIONS, POSE_AXES, POSE_RANGE_DEG
from facepaint.engine.regions import REGIONS
from facepaint.runtime.ui import controls
from facepaint.runtime.ui.batch import BatchRun
from facepaint.runtime.ui.files import MAX_UPLOAD_BYTES, Files, cameras
from facepaint.runtime.ui.live import LiveController
from facepaint.runtime.ui.quality import QualityJob
from facepaint.runtime.ui.render import RenderJob

Handler = Callable[[Request], Awaitable[Response]]


class Gate:
    """ASGI middleware in front of every HTTP request and WebSocket.

    * Same origin only: an ``Origin`` (sent by browsers on cross-site requests and on every
      WebSocket) must be the ``Host``, so a page elsewhere can neither steer the pipeline nor read
      the preview; without a token the ``Host`` must also name this machine (no DNS rebinding).
    * With a token (``--host`` not loopback): query ``?token=`` or header ``X-Token`` must carry it.
    Refused requests get 403, WebSockets close with 4403.
    """

    def __init__(self, app: ASGIApp, token: str | None, hosts: tuple[str, ...]) -> None:
        self.app, self.token = app, token
        self.hosts = {"127.0.0.1", "localhost", "::1", "[::1]", *hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        why = self._refusal(scope)
        if why is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403})
        else:
            await Response(why, 403)(scope, receive, send)

    def _refusal(self, scope: Scope) -> str | None:
        from urllib.parse import parse_qs, urlsplit

        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != host:
            return "requests from other sites are refused"
        if self.token is None:  # loopback: the Host must be this machine (a token cannot be rebound)
            known = urlsplit(f"//{host}").hostname in {h.strip("[]") for h in self.hosts}
            return None if known else "unknown host; open the address printed at start"
        query = parse_qs(scope.get("query_string", b"").decode())
        given = headers.get("x-token") or (query.get("token") or [""])[0]
        if secrets.compare_digest(given, self.token):
            return None
        return "a token is needed; open the address printed at start"


def _guarded(handler: Callable[[Request], Awaitable[Any]]) -> Handler:
    """A route whose FacepaintError becomes ``{"error": line}`` / 400 and any other error one line / 500."""

    async def route(request: Request) -> Response:
        try:
            return JSONResponse(await handler(request))
        except FacepaintError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except (ValueError, TypeError, KeyError) as exc:  # a malformed request body
            return JSONResponse({"error": f"bad request: {exc}"}, 400)
        except Exception as exc:  # noqa: BLE001 - a bug: one line, never a traceback on the page
            return JSONResponse({"error": f"unexpected {type(exc).__name__}: {exc}"}, 500)

    return route


class UiApp:
    """The routes over one ``LiveController``, one ``RenderJob`` and one ``Files``."""

    def __init__(self, files: Files, base: list[dict[str, Any]] | None = None,
                 defaults: dict[str, Any] | None = None) -> None:
        self.files = files
        self.live = LiveController(base)
        self.render = RenderJob(files, base)
        self.batch = BatchRun(files)
        self.quality = QualityJob()
        self.defaults = defaults or {}

    def routes(self) -> list[Any]:
        post = [("/api/live/start", self.live_start), ("/api/live/stop", self.live_stop),
                ("/api/live/update", self.live_update), ("/api/live/action", self.live_action),
                ("/api/live/vcam", self.live_vcam), ("/api/live/record", self.live_record),
                ("/api/settings", self.settings), ("/api/upload", self.upload),
                ("/api/render", self.render_start), ("/api/batch", self.batch_start),
                ("/api/quality", self.quality_start)]
        get = [("/api/controls", self.controls), ("/api/live/status", self.live_status),
               ("/api/render/status", self.render_status), ("/api/batch/status", self.batch_status),
               ("/api/quality/status", self.quality_status)]
        return [Route("/", self.page), Route("/api/file/{file_id}", self.file),
                *(Route(path, _guarded(h), methods=["POST"]) for path, h in post),
                *(Route(path, _guarded(h)) for path, h in get),
                WebSocketRoute("/ws/preview", self.preview)]

    async def page(self, request: Request) -> Response:
        html = resources.files("facepaint.runtime.ui").joinpath("page.html").read_text()
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def file(self, request: Request) -> Response:
        try:
            path = self.files.path(request.path_params["file_id"])
        except FacepaintError as exc:
            return JSONResponse({"error": str(exc)}, 404)
        return FileResponse(path, filename=path.name)

    async def controls(self, request: Request) -> dict[str, Any]:
        return {"controls": [c.to_dict() for c in controls.controls()], "expressions": list(EXPRESSIONS),
                "regions": list(REGIONS), "pose_axes": list(POSE_AXES), "pose_range": POSE_RANGE_DEG,
                "aus": list(AU_BLENDSHAPES), "cameras": cameras(),
                "recent": self.files.recent, "defaults": self.defaults, "max_upload": MAX_UPLOAD_BYTES}

    async def live_start(self, request: Request) -> dict[str, Any]:
        values = await _values(request)
        await _in_thread(self.live.start, values)
        await _in_thread(self.files.remember_portrait, str(values.get("--source", "")))
        return self.live.status()

    async def live_stop(self, request: Request) -> dict[str, Any]:
        await _in_thread(self.live.stop)
        return self.live.status()

    async def live_update(self, request: Request) -> dict[str, Any]:
        # In a worker thread: a new background reads its image and makes its plate there.
        return {"applied": await _in_thread(self.live.update, await _values(request))}

    async def live_action(self, request: Request) -> dict[str, Any]:
        name = str((await request.json())["name"])
        if name not in ("pause", "passthrough", "recalibrate"):
            raise ValueError(f"unknown action {name!r}")
        self.live.action(name)
        return self.live.status()

    async def live_vcam(self, request: Request) -> dict[str, Any]:
        device = await _in_thread(self.live.set_vcam, bool((await request.json())["on"]))
        return {**self.live.status(), "device": device}

    async def live_record(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        on = bool(body.get("on"))
        path = self.files.new_path(".mp4") if on else None
        await _in_thread(self.live.set_recording, None if path is None else str(path))
        return {**self.live.status(), "file": self.files.serve(path) if path else None}

    async def live_status(self, request: Request) -> dict[str, Any]:
        return self.live.status()

    async def settings(self, request: Request) -> dict[str, Any]:
        values = await _values(request)
        _, layer = controls.parse(values)
        return {"command": controls.command_line(values), "toml": controls.to_toml(layer)}

    async def upload(self, request: Request) -> dict[str, Any]:
        length = int(request.headers.get("content-length") or 0)
        if length > MAX_UPLOAD_BYTES:
            raise ValueError(f"upload too large; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_UPLOAD_BYTES:
                raise ValueError(f"upload too large; the limit is {MAX_UPLOAD_BYTES // 2**20} MiB")
        path = self.files.save_upload(request.query_params.get("name", ""), bytes(data))
        return {"path": str(path)}

    async def render_start(self, request: Request) -> dict[str, Any]:
        self.render.start(await _values(request))
        return self.render.status()

    async def render_status(self, request: Request) -> dict[str, Any]:
        return self.render.status()

    async def batch_start(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        await _in_thread(self.batch.start, str(body.get("jobs") or ""), str(body.get("out") or ""))
        return await _in_thread(self.batch.status)

    async def batch_status(self, request: Request) -> dict[str, Any]:
        return await _in_thread(self.batch.status)

    async def quality_start(self, request: Request) -> dict[str, Any]:
        """``{source, driving, file?, max_frames?}``: ``file`` is the id of a render the page got;
        no source is self-reenactment of ``driving``."""
        body = await request.json()
        output = str(self.files.path(str(body["file"]))) if body.get("file") else None
        frames = int(body["max_frames"]) if body.get("max_frames") else None
        self.quality.start(str(body.get("source") or ""), str(body.get("driving") or ""), output, frames)
        return self.quality.status()

    async def quality_status(self, request: Request) -> dict[str, Any]:
        return self.quality.status()

    async def preview(self, ws: WebSocket) -> None:
        """Pull: the page sends the seq it drew last, gets ``{seq, age_ms}`` then the JPEG."""
        await ws.accept()
        try:
            while True:
                seq = int(await ws.receive_text() or 0)
                frame = await _in_thread(self.live.tap.next_after, seq, 1.0)
                if frame is None:
                    await ws.send_text(json.dumps({"seq": seq, "idle": True}))
                    continue
                age = (time.perf_counter() - frame.captured_at) * 1000.0
                await ws.send_text(json.dumps({"seq": frame.seq, "age_ms": round(age, 1)}))
                await ws.send_bytes(frame.jpeg)
        except (WebSocketDisconnect, RuntimeError):
            return


async def _values(request: Request) -> dict[str, Any]:
    body = await request.json()
    values = body.get("values", body)
    if not isinstance(values, dict):
        raise ValueError("values must be an object of flag: value")
    return values


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args)


def make_app(files: Files, *, token: str | None, base: list[dict[str, Any]] | None = None,
             defaults: dict[str, Any] | None = None, host: str = "127.0.0.1") -> tuple[ASGIApp, UiApp]:
    """The ASGI app behind its ``Gate`` (same origin; ``token`` when set) and its ``UiApp``."""
    ui = UiApp(files, base, defaults)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        ui.live.stop()
        ui.live.tap.shutdown()

    return Gate(Starlette(routes=ui.routes(), lifespan=lifespan), token, (host,)), ui
