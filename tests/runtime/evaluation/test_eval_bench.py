"""``facepaint-live bench``: stable keys, machine description, device checks, the reference runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facepaint.engine.errors import BackendUnavailable, ConfigError
from facepaint.runtime.evaluation import bench as B

_STATS = {"fps": 12.0, "latency_ms": {"p50": 80.0, "p95": 95.0}, "frames_out": 30,
          "stages": {"track": {"p50": 9.0, "p95": 12.0, "count": 30}}}


def test_report_keys_are_stable() -> None:
    floor = {"fps": 48.0, "frames_out": 30, "stages": {}}
    slow_floor = {**floor, "fps": 40.0}
    report = B._report("s.jpg", "d.mp4", "cpu", {"full": [_STATS], "floor": [slow_floor, floor],
                                                 "passthrough": [{"fps": 200.0, "frames_out": 30}]})
    assert tuple(report) == B.BENCH_KEYS
    assert tuple(report["machine"]) == ("cpu", "cores", "gpu", "platform")
    assert report["ratio"] == pytest.approx(0.25)  # the best floor run counts
    assert report["runs"]["floor"] == [40.0, 48.0]
    assert report["frames"] == 30
    json.dumps(report, allow_nan=False)
    assert "ratio 0.25" in "\n".join(B.summary_lines(report))


def test_ratio_is_none_without_a_floor() -> None:
    report = B._report("s.jpg", "d.mp4", "cpu", {"full": [_STATS], "passthrough": [{"fps": 0.0}],
                                                 "floor": [{"fps": 0.0, "frames_out": 0, "stages": {}}]})
    assert report["ratio"] is None


def test_machine_names_the_cpu() -> None:
    info = B.machine_info()
    assert info["cpu"] and info["cores"] >= 1
    assert info["gpu"] is None or isinstance(info["gpu"], str)


def test_device_checks() -> None:
    with pytest.raises(ConfigError, match="cpu, cuda or auto"):
        B.check_device("tpu")
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        B.check_device("cuda")
    else:
        with pytest.raises(BackendUnavailable, match="--device cpu"):
            B.check_device("cuda")


def test_cuda_with_only_geometric_stages_is_refused_before_any_round(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match="geometric stages run on the CPU"):
        B.check_device("cuda", {})
    B.check_device("cuda", {"reenactor": {"kind": "neural"}})  # a neural stage can use the GPU


def test_cli_cuda_without_cuda_is_one_line(capsys: pytest.CaptureFixture, media: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from facepaint.runtime.cli import main

    code = main(["bench", "--source", str(media / "portraits" / "lp_s42.jpg"),
                 "--driving", str(media / "driving" / "lp_d0.mp4"), "--device", "cuda"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "no CUDA" in err and "\n" not in err


def test_cli_config_file_reaches_the_engine(capsys: pytest.CaptureFixture, media: Path, tmp_path: Path) -> None:
    """``--config``'s [engine] tables are what bench renders with."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from facepaint.runtime.cli import main

    config = tmp_path / "gpu.toml"
    config.write_text('[engine.model]\ndevice = "cuda"\n[engine.reenactor]\nkind = "neural"\n')
    args = ["bench", "--source", str(media / "portraits" / "lp_s42.jpg"), "--driving",
            str(media / "driving" / "lp_d0.mp4"), "--config", str(config)]
    assert main(args) == 2
    assert "no CUDA" in capsys.readouterr().err


def test_passthrough_and_floor_run(media: Path, tmp_path: Path) -> None:
    pytest.importorskip("facepaint.plugins.trackers.mediapipe")
    clip = str(media / "driving" / "lp_d0.mp4")
    passthrough = B._timed_pipeline("passthrough", clip, str(tmp_path / "p.mp4"), None)
    floor = B.run_floor(clip, str(tmp_path / "f.mp4"))
    assert passthrough["frames_out"] == floor["frames_out"] == 78
    assert passthrough["fps"] > 0 and floor["fps"] > 0
    assert set(floor["stages"]) == {"decode", "track", "encode"}


def test_full_run_fits_the_output_inside_size(media: Path, tmp_path: Path) -> None:
    pytest.importorskip("facepaint.plugins.trackers.mediapipe")
    from facepaint.runtime.evaluation.quality import trim_video

    clip = str(tmp_path / "d.mp4")
    trim_video(str(media / "driving" / "lp_d0.mp4"), clip, 6)
    stats = B.run_full(str(media / "portraits" / "obama.jpg"), clip, str(tmp_path / "o.mp4"), None, (200, 160))
    width, height = stats["output_size"]
    assert width <= 200 and height <= 160 and max(width / 200, height / 160) > 0.95
    report = B._report("s.jpg", clip, "cpu", {"full": [_STATS], "floor": [{"fps": 48.0, "stages": {}}],
                                              "passthrough": [{"fps": 200.0}]}, (200, 160))
    assert report["size"] == [200, 160] and "inside 200x160" in B.summary_lines(report)[0]
