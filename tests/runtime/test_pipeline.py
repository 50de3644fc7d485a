"""The threaded stage machinery: order, policies, end of stream, errors, stop, stats."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass

import pytest

from facepaint.engine.errors import ConfigError, InputError
from facepaint.runtime.pipeline import BLOCK, DROP_OLDEST, END, Edge, Pipeline, Stage
from facepaint.runtime.stats import PipelineStats, StageStats


@dataclass
class Item:
    value: int
    captured_at: float


def _items(n: int):
    for i in range(n):
        yield Item(i, time.perf_counter())


def test_block_pipeline_loses_nothing_and_keeps_order() -> None:
    out: list[int] = []
    with Pipeline("t") as pipe:
        pipe.source("src", _items(200))
        pipe.stage("double", lambda it: Item(it.value * 2, it.captured_at), capacity=2)
        pipe.stage("sink", lambda it: out.append(it.value), capacity=1)
        pipe.start()
        assert pipe.join(timeout=30)
    assert out == [2 * i for i in range(200)]
    stats = pipe.stats.to_dict()
    assert stats["frames_in"] == 200 and stats["frames_out"] == 200 and stats["dropped"] == 0
    assert set(stats["stages"]) == {"src", "double", "sink"} and stats["stages"]["src"]["count"] == 200
    assert stats["stages"]["double"]["count"] == 200
    assert stats["latency_ms"]["p95"] >= stats["latency_ms"]["p50"] >= 0
    assert stats["fps"] > 0
    json.dumps(stats)  # JSON-ready


def test_source_may_be_a_generator_function_and_stage_may_expand() -> None:
    out: list[int] = []
    with Pipeline() as pipe:
        pipe.source("src", lambda: iter(range(3)))
        pipe.stage("twice", lambda v: (v, v), expand=True)
        pipe.stage("sink", out.append)
        pipe.start().join(timeout=10)
    assert out == [0, 0, 1, 1, 2, 2]


def test_none_result_passes_nothing_on() -> None:
    out: list[int] = []
    with Pipeline() as pipe:
        pipe.source("src", range(6))
        pipe.stage("even", lambda v: v if v % 2 == 0 else None)
        pipe.stage("sink", out.append)
        pipe.start().join(timeout=10)
    assert out == [0, 2, 4]


def test_drop_oldest_counts_drops_and_keeps_the_newest() -> None:
    release = threading.Event()
    out: list[int] = []

    def slow(v: int) -> None:
        release.wait(5)
        out.append(v)

    with Pipeline() as pipe:
        pipe.source("src", range(50))
        pipe.stage("sink", slow, capacity=1, policy=DROP_OLDEST)
        pipe.start()
        deadline = time.monotonic() + 5
        while pipe.stats.frames_in < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        assert pipe.join(timeout=10)
    assert out[-1] == 49  # the newest always survives
    stats = pipe.stats.to_dict()
    assert stats["dropped"] == 50 - len(out) > 0
    assert stats["drops"] == {"src->sink": stats["dropped"]}
    assert stats["frames_out"] == len(out)


def test_stage_error_stops_pipeline_and_reraises_same_type() -> None:
    seen: list[int] = []

    def boom(v: int) -> int:
        if v == 3:
            raise InputError("driving video x.mp4 is corrupt at frame 3")
        return v

    def endless():
        i = 0
        while True:
            yield i
            i += 1

    with Pipeline() as pipe:
        pipe.source("src", endless())
        pipe.stage("boom", boom)
        pipe.stage("sink", seen.append)
        pipe.start()
        with pytest.raises(InputError, match="corrupt at frame 3"):
            pipe.join(timeout=10)
    assert not pipe.running
    assert seen == [0, 1, 2][: len(seen)]  # items in flight when it failed are discarded


def test_source_error_is_reraised() -> None:
    def bad():
        yield 1
        raise RuntimeError("decoder died")

    with Pipeline() as pipe:
        pipe.source("src", bad())
        pipe.stage("sink", lambda v: None)
        pipe.start()
        with pytest.raises(RuntimeError, match="decoder died"):
            pipe.join(timeout=10)


def test_stop_ends_an_endless_pipeline_and_closes_the_generator() -> None:
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield 1
        finally:
            closed.set()

    pipe = Pipeline()
    pipe.source("src", endless())
    pipe.stage("sink", lambda v: time.sleep(0.001), capacity=2)
    pipe.start()
    time.sleep(0.1)
    assert not pipe.join(timeout=0.05)  # still running: timeout returns False
    pipe.stop()
    assert pipe.join(timeout=5)
    assert closed.is_set()
    pipe.close()
    pipe.close()  # runs once; a second call does nothing
    assert all(t.name != "facepaint-src" for t in threading.enumerate())


def test_threads_are_named() -> None:
    names: list[str] = []
    with Pipeline() as pipe:
        pipe.source("capture", range(1))
        pipe.stage("render", lambda v: names.append(threading.current_thread().name))
        pipe.start().join(timeout=5)
    assert names == ["facepaint-render"]


def test_bad_configuration_is_a_config_error() -> None:
    pipe = Pipeline()
    with pytest.raises(ConfigError, match="source first"):
        pipe.stage("x", lambda v: v)
    pipe.source("src", range(1))
    with pytest.raises(ConfigError, match="policy"):
        pipe.stage("x", lambda v: v, policy="leaky")
    with pytest.raises(ConfigError, match="capacity"):
        pipe.stage("x", lambda v: v, capacity=0)
    with pytest.raises(ConfigError, match="unique"):
        pipe.stage("src", lambda v: v)
    with pytest.raises(ConfigError, match="first stage"):
        pipe.source("again", range(1))
    with pytest.raises(ConfigError, match="nothing to run"):
        Pipeline().start()


def test_edge_end_is_never_dropped() -> None:
    edge = Edge("a->b", 1, DROP_OLDEST, threading.Event())
    edge.put(1)
    edge.put(END)
    assert not edge.put(2)  # nothing follows END
    assert edge.get() == 1
    assert edge.get() is END
    block = Edge("a->b", 1, BLOCK, threading.Event())
    block.put(1)
    block.put(END)  # END does not wait for room
    assert len(block) == 2


def test_stage_stats_percentiles_and_window() -> None:
    s = StageStats("x", window=4)
    for ms in (100, 1, 2, 3, 4):
        s.add(ms / 1000)
    d = s.to_dict()
    assert d["count"] == 5
    assert d["p50"] == pytest.approx(2.5)  # the 100 ms sample left the window
    with s.time():
        pass
    assert s.count == 6


def test_pipeline_stats_fps_and_latency_with_fake_clock() -> None:
    now = [10.0]
    stats = PipelineStats(clock=lambda: now[0])
    stats.start()
    for _ in range(10):
        stats.frame_in()
        now[0] += 0.1
        stats.frame_out(captured_at=now[0] - 0.05)
    stats.record_drop("a->b", 3)
    d = stats.to_dict()
    assert d["fps"] == pytest.approx(10.0)
    assert d["fps_recent"] == pytest.approx(10.0)
    assert d["latency_ms"]["p50"] == pytest.approx(50.0)
    assert d["dropped"] == 3 and d["frames_in"] == 10 and d["frames_out"] == 10
    assert d["elapsed_s"] == pytest.approx(1.0)


def test_a_stage_alone_is_a_context_manager() -> None:
    stop = threading.Event()
    stats = PipelineStats()
    inbox = Edge("in->double", 4, BLOCK, stop)
    outbox = Edge("double->out", 4, BLOCK, stop)
    errors: list[BaseException] = []
    with Stage("double", lambda v: v * 2, inbox=inbox, outbox=outbox, stop=stop, on_error=errors.append,
               stats=stats) as stage:
        inbox.put(21)
        inbox.put(END)
        assert outbox.get() == 42 and outbox.get() is END
        assert stage.join(timeout=5)
    stage.close()
    assert errors == [] and stats.to_dict()["stages"]["double"]["count"] == 1


def test_stream_timestamps_strictly_increase_even_when_frames_share_a_millisecond() -> None:
    from facepaint.plugins.base import StreamTimestamps

    stamp = StreamTimestamps()
    # 3125 fps: consecutive frames round to the same millisecond; a tracker would refuse a repeat.
    got = [stamp(i / 3125.0) for i in range(6)]
    assert got == sorted(set(got)) and got[0] == 0
    assert stamp(1.0) == 1000  # real time is kept once frames are far enough apart


def test_flush_passes_held_items_on_before_the_end() -> None:
    from facepaint.runtime.pipeline import BLOCK, Pipeline

    held: list[int] = []
    got: list[int] = []

    def hold_two(item: int) -> list[int]:
        held.append(item)
        return [held.pop(0)] if len(held) > 2 else []

    with Pipeline("t") as pipe:
        pipe.source("src", range(6))
        pipe.stage("hold", hold_two, policy=BLOCK, expand=True, flush=lambda: [held.pop(0) for _ in list(held)])
        pipe.stage("sink", got.append, policy=BLOCK)
        pipe.start()
        assert pipe.join(timeout=10)
    assert got == list(range(6))
    assert pipe.stats.to_dict()["frames_in"] == 6 and pipe.stats.to_dict()["frames_out"] == 6


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OS thread names are read from /proc")
def test_stage_threads_carry_their_name_in_the_os():
    """``top -H`` and bench/soak.py tell the stages' CPU apart by the OS thread name."""
    seen: list[str] = []

    def track(item: int) -> int:
        seen.append(open(f"/proc/self/task/{threading.get_native_id()}/comm").read().strip())
        return item

    pipe = Pipeline("names")
    pipe.source("capture", lambda: iter(range(3)))
    pipe.stage("track", track, capacity=1)
    pipe.start()
    assert pipe.join(10.0)  # the source ends after three items
    pipe.close(5.0)
    assert seen == ["fp-track"] * 3
