"""Threaded stage machinery shared by the offline and the live mode.

A pipeline is a chain: one source stage (an iterable, run in its own thread) then stages that each
take an item and return the next one (or, with ``expand=True``, return an iterable of items). Every
edge between two stages is a bounded ``Edge`` with a declared policy:

* ``block``: the producer waits for room; nothing is lost (file rendering).
* ``drop_oldest``: capacity 1-2, the oldest waiting item is discarded and counted (live).

End of stream travels as a sentinel. ``stop()`` sets one Event that every stage watches. An
exception in any stage stops the whole pipeline and ``join()`` re-raises that same exception object
in the caller, so a ``FacepaintError`` keeps its type and message; ``failed_stage(exc)`` names the
stage it came from. Example::

    stats = PipelineStats()
    with Pipeline("render", stats=stats) as pipe:
        pipe.source("decode", video)                         # yields Frame
        pipe.stage("track", track_fn, capacity=4)            # Frame -> item
        pipe.stage("encode", sink_fn, capacity=4)            # item -> anything (the last stage)
        pipe.start()
        pipe.join()                                           # raises a stage's exception
    print(stats.to_dict())
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from facepaint.engine.errors import ConfigError, FacepaintError
from facepaint.runtime.queues import _POLL_S, _STOPPED, BLOCK, DROP_OLDEST, END, POLICIES, Edge  # noqa: F401
from facepaint.runtime.stats import PipelineStats

__all__ = ["BLOCK", "DROP_OLDEST", "END", "POLICIES", "Edge", "Pipeline", "Stage", "default_captured_at",
           "failed_stage", "mark_stage"]


def mark_stage(exc: BaseException, name: str) -> None:
    """Record on ``exc`` the stage it was raised in (``failed_stage`` reads it back).

    A FacepaintError's message already says what to fix; any other exception is a bug, and its
    traceback gets a note naming the stage, since the thread that raised it is gone by then.
    """
    if failed_stage(exc) is not None:
        return
    try:
        exc.facepaint_stage = name  # type: ignore[attr-defined]
    except AttributeError:  # an exception type with __slots__: the note below still names it
        pass
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None and not isinstance(exc, (FacepaintError, KeyboardInterrupt)):
        add_note(f"(raised in the pipeline stage '{name}')")


def failed_stage(exc: BaseException) -> str | None:
    """The pipeline stage ``exc`` was raised in, None when it came from outside a pipeline."""
    return getattr(exc, "facepaint_stage", None)


def default_captured_at(item: Any) -> float | None:
    """``item.captured_at`` when the item has it (``Frame`` and wrappers exposing it), else None."""
    value = getattr(item, "captured_at", None)
    return float(value) if value is not None else None


class Stage:
    """One named thread: reads ``inbox`` (or iterates ``source``), applies ``fn``, writes ``outbox``.

    A context manager with ``start / stop / close``; ``close()`` runs once. ``stop()`` sets the
    shared stop Event, which stops the whole pipeline the stage belongs to.

    Args:
        name: Thread and stats name.
        fn: For a source stage, an iterable (or a zero-argument callable returning one); otherwise
            a function item -> item (None: nothing is passed on) or, with ``expand``, item -> iterable.
        inbox: The edge read from (None for the source stage).
        outbox: The edge written to (None for the last stage, whose results are discarded).
        stop: The shared stop Event.
        on_error: Called with the exception when ``fn`` raises.
        stats: Where durations (and, for the first/last stage, frames in/out) are recorded.
        expand: ``fn`` returns an iterable of items (a generator stage).
        captured_at: Reads an item's capture time, for end-to-end latency at the last stage.
        flush: Called once at the end of the stream; the items it returns are passed on before the
            end (a stage that holds items back, such as a centred smoothing window).
    """

    def __init__(self, name: str, fn: Any, *, inbox: Edge | None, outbox: Edge | None,
                 stop: threading.Event, on_error: Callable[[BaseException], None],
                 stats: PipelineStats, expand: bool = False,
                 captured_at: Callable[[Any], float | None] = default_captured_at,
                 flush: Callable[[], Any] | None = None) -> None:
        self.name, self.inbox, self.outbox = name, inbox, outbox
        self._fn, self._expand, self._captured_at, self._flush = fn, expand, captured_at, flush
        self._stop, self._on_error, self._stats = stop, on_error, stats
        self._timer = stats.stage(name)
        self._thread = threading.Thread(target=self._run, name=f"facepaint-{name}", daemon=True)
        self._started = False
        self._closed = False

    def start(self) -> None:
        """Start the thread (once)."""
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        """Ask the pipeline to stop; returns at once."""
        self._stop.set()
        for edge in (self.inbox, self.outbox):
            if edge is not None:
                edge.wake()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True when it has finished (or never started)."""
        if self._started:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        """Stop and join (runs once)."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        self.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def __enter__(self) -> Stage:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        name_os_thread(f"fp-{self.name}")
        try:
            if self.inbox is None:
                self._run_source()
            else:
                self._run_map()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through join()
            mark_stage(exc, self.name)
            self._on_error(exc)
        finally:
            if self.outbox is not None:
                self.outbox.put(END)

    def _run_source(self) -> None:
        iterable = self._fn() if callable(self._fn) and not isinstance(self._fn, Iterable) else self._fn
        iterator = iter(iterable)
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                item = next(iterator, END)
                if item is END:
                    return
                self._timer.add(time.perf_counter() - start)  # the end-of-stream call is no frame
                self._stats.frame_in()
                if not self._emit(item):
                    return
        finally:
            # A generator must be closed by the thread that runs it (its finally blocks free files).
            close = getattr(iterator, "close", None)
            if callable(close):
                close()

    def _run_map(self) -> None:
        while True:
            item = self.inbox.get()  # type: ignore[union-attr]
            if item is _STOPPED or (item is END and self._flush is None):
                return
            with self._timer.time():
                if item is END:
                    results = list(self._flush())  # type: ignore[misc]
                else:
                    result = self._fn(item)
                    results = list(result) if self._expand else [result]
            if self.outbox is None:
                self._stats.frame_out(self._captured_at(item))
                continue
            for out in results:
                if out is not None and not self._emit(out):
                    return
            if item is END:
                return

    def _emit(self, item: Any) -> bool:
        if self.outbox is None:
            self._stats.frame_out(self._captured_at(item))
            return True
        return self.outbox.put(item)


class Pipeline:
    """A chain of stages joined by bounded edges; a context manager (``close()`` on exit).

    Args:
        name: For error messages.
        stats: Where the run's statistics go (a new ``PipelineStats`` by default).
        captured_at: Reads an item's capture time (``item.captured_at`` by default).
    """

    def __init__(self, name: str = "pipeline", *, stats: PipelineStats | None = None,
                 captured_at: Callable[[Any], float | None] = default_captured_at) -> None:
        self.name = name
        self.stats = stats if stats is not None else PipelineStats()
        self.stop_event = threading.Event()
        self.stages: list[Stage] = []
        self.edges: list[Edge] = []
        self._captured_at = captured_at
        self._error: BaseException | None = None
        self._error_lock = threading.Lock()
        self._started = False
        self._closed = False

    def source(self, name: str, iterable: Iterable[Any] | Callable[[], Iterable[Any]]) -> Pipeline:
        """Set the first stage: a thread that iterates ``iterable`` (items counted as frames in).

        Raises:
            ConfigError: If the pipeline already has stages or was started.
        """
        if self.stages or self._started:
            raise ConfigError(f"{self.name}: the source must be the first stage, added before start()")
        self.stages.append(self._make_stage(name, iterable, inbox=None))
        return self

    def stage(self, name: str, fn: Callable[[Any], Any], *, capacity: int = 4, policy: str = BLOCK,
              expand: bool = False, flush: Callable[[], Any] | None = None) -> Pipeline:
        """Append a stage fed by a new edge of ``capacity`` with ``policy``.

        The last stage added is the output: each item it finishes counts as a delivered frame and
        its latency is measured from the item's ``captured_at``.

        Raises:
            ConfigError: Without a source first, after start(), or on a bad capacity/policy.
        """
        if not self.stages or self._started:
            raise ConfigError(f"{self.name}: add a source first, and every stage before start()")
        prev = self.stages[-1]
        edge = Edge(f"{prev.name}->{name}", capacity, policy, self.stop_event, self.stats)
        self.edges.append(edge)
        prev.outbox = edge
        self.stages.append(self._make_stage(name, fn, inbox=edge, expand=expand, flush=flush))
        return self

    def start(self) -> Pipeline:
        """Start every stage thread (once).

        Raises:
            ConfigError: When there is no stage to run.
        """
        if not self.stages:
            raise ConfigError(f"{self.name}: nothing to run; add a source and stages first")
        if not self._started:
            self._started = True
            self.stats.start()
            for stage in reversed(self.stages):  # consumers first, so no producer waits on a dead one
                stage.start()
        return self

    def stop(self) -> None:
        """Ask every stage to stop now (items in flight are discarded); returns at once."""
        self.stop_event.set()
        for edge in self.edges:
            edge.wake()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the stages to finish, then re-raise the first stage exception, if any.

        Waits in slices so that Ctrl-C reaches the calling thread; returns (raises) as soon as a
        stage has failed.

        Args:
            timeout: Seconds to wait at most (None: until the stream ends or an error stops it).

        Returns:
            True when every stage has finished, False when ``timeout`` ran out first.

        Raises:
            BaseException: The exception a stage raised (the same object, type kept).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for stage in self.stages:
            # After a failure, raise at once: a stage stuck in a blocking call (a camera read) must
            # not hold the error back; close() then joins with its own timeout.
            while self._error is None and not stage.join(_POLL_S):
                if deadline is not None and time.monotonic() >= deadline:
                    return False
        self._raise_error()
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop and join every stage (runs once; does not raise a stage's exception)."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        for stage in self.stages:
            stage.close(timeout)

    @property
    def error(self) -> BaseException | None:
        """The first exception a stage raised, if any."""
        return self._error

    @property
    def running(self) -> bool:
        """True while any stage thread is alive."""
        return any(stage.alive for stage in self.stages)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make_stage(self, name: str, fn: Any, *, inbox: Edge | None, expand: bool = False,
                    flush: Callable[[], Any] | None = None) -> Stage:
        if any(stage.name == name for stage in self.stages):
            raise ConfigError(f"{self.name}: two stages are called '{name}'; names must be unique")
        return Stage(name, fn, inbox=inbox, outbox=None, stop=self.stop_event, on_error=self._fail,
                     stats=self.stats, expand=expand, captured_at=self._captured_at, flush=flush)

    def _fail(self, exc: BaseException) -> None:
        with self._error_lock:
            if self._error is None:
                self._error = exc
        self.stop()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error


_PR_SET_NAME = 15  # prctl option (linux/prctl.h)


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` (15 bytes at most) in the operating system too (Linux).

    Python 3.11 names threads only for itself: ``top -H``, ``/proc/<pid>/task/*/comm`` and
    ``bench/soak.py`` see every stage as "python", so the CPU each stage takes cannot be told
    apart. Elsewhere, or without glibc's prctl, the name is only Python's (nothing depends on it).
    """
    if not sys.platform.startswith("linux"):
        return
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name) if libc_name else None
    except OSError:
        return
    if libc is not None and hasattr(libc, "prctl"):
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
