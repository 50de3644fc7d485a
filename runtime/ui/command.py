"""``facepaint-live ui``: serve the page on 127.0.0.1 and open it in the browser.

    facepaint-live ui
    facepaint-live ui --config my.toml --port 8765 --no-browser

Any ``--host`` other than a loopback address needs a token: one is made, printed with the address
and checked on every request and WebSocket.
"""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import socket
import sys
import tempfile
import threading
import webbrowser
from pathlib import Path
from typing import Any

from facepaint.engine.errors import ConfigError
from facepaint.runtime.exits import OneLineParser

DEFAULT_PORT = 8765


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="facepaint-live ui", description="A local web page for the live camera and renders.")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1; any other "
                   "needs the token printed at start)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free one)")
    p.add_argument("--config", help="TOML file of settings the page starts from (as the main command's --config)")
    p.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    p.add_argument("--workdir", help="folder for uploads, recordings and renders (default: a new temporary one)")
    return p


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def defaults_from(config_path: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The config layers under the page and the page's starting ``{flag: value}`` (source, cam).

    Raises:
        FacepaintError: The config file is missing or malformed (the main command's message).
    """
    if not config_path:
        return [], {}
    from facepaint.runtime.config import build_app_config, load_toml

    layer = load_toml(config_path)
    try:
        build_app_config({"source": "x.jpg"}, layer)  # checked now, not at the first start
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--config {config_path}: {exc}") from None
    defaults = {f"--{k}": str(layer[k]) for k in ("source", "cam", "driving") if k in layer}
    return [layer], defaults


def main(argv: list[str]) -> int:
    """Serve until Ctrl-C; returns the exit code.

    Raises:
        FacepaintError: Bad flags or config, a port in use, or the ``[ui]`` extra not installed.
    """
    args = build_parser().parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        raise ConfigError('the page needs the ui extra: pip install "facepaint-live[ui]"') from None
    from facepaint.runtime.ui.files import Files
    from facepaint.runtime.ui.recent import RecentPortraits, state_dir
    from facepaint.runtime.ui.server import make_app

    base, defaults = defaults_from(args.config)
    token = None if is_loopback(args.host) else secrets.token_urlsafe(24)
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="facepaint-ui-"))
    sock = _bind(args.host, args.port)  # here, so a taken port is our one-line error, not uvicorn's exit(3)
    files = Files(root, RecentPortraits(state_dir()))  # the recent portraits outlive the session
    app, _ = make_app(files, token=token, base=base, defaults=defaults, host=args.host)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    threading.Thread(target=_announce, args=(server, sock, args, token), name="ui-announce", daemon=True).start()
    server.run(sockets=[sock])
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``.

    Raises:
        ConfigError: The address cannot be had (in use, not this machine's).
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); try another --port or --host "
                          "(0: any free one)") from None
    return sock


def _announce(server: Any, sock: socket.socket, args: argparse.Namespace, token: str | None) -> None:
    """Print the address once the server listens, and open it unless ``--no-browser``."""
    import time

    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    port = sock.getsockname()[1]
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    print(f"facepaint-live ui: serving {url}", file=sys.stderr, flush=True)
    if not args.no_browser:
        webbrowser.open(url)

