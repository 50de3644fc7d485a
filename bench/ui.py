"""``facepaint-live ui`` figures, and the screenshot ``docs/ui.png``.

* the live pipeline's fps and capture-to-sink latency with the page closed and open (alternating
  runs of ``--seconds`` each; the page may cost at most 10 %);
* the preview's frame rate in the browser and the age of the frames it shows;
* the time from ``facepaint-live ui`` to a page whose controls are built (the browser already open);
* the size of what the ``[ui]`` extra installs (its distributions' files in this environment).

Usage: ``python bench/ui.py [--seconds 12] [--rounds 2] [--shot docs/ui.png]``. Needs the [ui] and
[test] extras, chromium and chromium-driver. Timings are only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the page tests' server and browser helpers

from ui_served import CLIP, chrome, serve, wait_for  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"
UI_DISTS = ("starlette", "uvicorn", "websockets", "anyio", "h11", "click", "idna", "sniffio")


def run_phase(served, browser, seconds: float, page: bool) -> dict[str, float]:
    """One live run of ``seconds`` (the first 3 s not counted), with the page open or closed."""
    served.call("/api/live/start", {"values": served.live_values()})
    run = served.ui.live.run
    if page:
        browser.get(served.url + "/")
        wait_for(lambda: browser.execute_script("return window.preview && window.preview.total") > 5, 60, "preview")
    else:
        browser.get("about:blank")
    time.sleep(seconds)
    rows = [r for r in run.stats.series() if r["t"] >= 3 and r["n"] > 0][:-1]  # the last second is partial
    out = {"fps": statistics.mean(r["n"] for r in rows), "p95_ms": statistics.median(r["p95"] for r in rows)}
    if page:
        n0, t0 = browser.execute_script("return window.preview.total"), time.monotonic()
        ages = []
        while time.monotonic() - t0 < 3:
            ages.append(browser.execute_script("return window.preview.age"))
            time.sleep(0.1)
        out["preview_fps"] = (browser.execute_script("return window.preview.total") - n0) / (time.monotonic() - t0)
        out["preview_delay_ms"] = statistics.median(ages)
    served.call("/api/live/stop", {})
    return out


def time_to_page(browser) -> float:
    """Seconds from starting ``facepaint-live ui`` to its page with the controls built."""
    t0 = time.monotonic()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("facepaint-live")), "ui", "--no-browser",
                             "--port", "0"], stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        url = line.strip().rsplit(" ", 1)[-1]
        browser.get(url)
        wait_for(lambda: browser.execute_script("return document.body.dataset.ready") == "1", 30, "the page")
        return time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(10)


def installed_mib(names: tuple[str, ...]) -> dict[str, float]:
    sizes = {}
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        sizes[name] = sum(Path(str(dist.locate_file(f))).stat().st_size for f in dist.files or ()
                          if Path(str(dist.locate_file(f))).is_file()) / 2**20
    return sizes


def screenshot(served, browser, path: Path) -> None:
    served.call("/api/live/start", {"values": served.live_values(**{"--expression": "happy", "--strength": "0.8"})})
    browser.get(served.url + "/")
    wait_for(lambda: browser.execute_script("return window.preview && window.preview.total") > 30, 60, "preview")
    browser.execute_script("document.getElementById('source').value = arguments[0];"
                           "document.getElementById('cam').value = arguments[1];"
                           "const e = document.querySelector(\"[data-flag='--expression']\");"
                           "e.value = 'happy'; e.dispatchEvent(new Event('change'));"
                           "const s = document.querySelector(\"[data-flag='--strength']\");"
                           "s.value = 0.8; s.dispatchEvent(new Event('input'));",
                           served.live_values()["--source"], served.live_values()["--cam"])
    browser.find_element("id", "copy").click()
    time.sleep(1.5)
    browser.save_screenshot(str(path))
    served.call("/api/live/stop", {})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=12.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--shot", default=str(ROOT / "docs" / "ui.png"))
    args = p.parse_args()
    browser = chrome(1500, 900)
    try:
        gen = serve(Path(tempfile.mkdtemp(prefix="bench-ui-")), MEDIA)
        served = next(gen)
        phases: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for page in (False, True):
                phases[page].append(run_phase(served, browser, args.seconds, page))
        for page, rows in phases.items():
            summary = {k: round(statistics.mean(r[k] for r in rows), 1) for k in rows[0]}
            print(f"page {'open  ' if page else 'closed'}: {summary}  (clip {CLIP}, {args.rounds}x{args.seconds:g} s)")
        screenshot(served, browser, Path(args.shot))
        print(f"wrote {args.shot}")
        gen.close()
        print(f"facepaint-live ui to a usable page: {time_to_page(browser):.2f} s")
    finally:
        browser.quit()
    sizes = installed_mib(UI_DISTS)
    print(f"[ui] installs {sum(sizes.values()):.1f} MiB: " + ", ".join(f"{k} {v:.2f}" for k, v in sizes.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
