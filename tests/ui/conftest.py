"""Fixtures of the page's tests; they skip where the [ui] extra is not installed."""

from __future__ import annotations

import pytest

pytest.importorskip("uvicorn", reason="the [ui] extra is not installed")
pytest.importorskip("starlette", reason="the [ui] extra is not installed")

from ui_served import serve  # noqa: E402 - after the skip


@pytest.fixture()
def served(tmp_path, media):
    yield from serve(tmp_path, media)
