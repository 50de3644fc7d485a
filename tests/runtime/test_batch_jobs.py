"""The batch job file and manifest: validation up front with line numbers, input hashes, resume rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from facepaint.engine.errors import ConfigError
from facepaint.engine.landmark_transformer import TransformerConfig
from facepaint.runtime.batch.jobs import read_jobs
from facepaint.runtime.batch.manifest import InputHasher, JobResult, Manifest
from facepaint.runtime.cli import main


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_columns_become_the_main_commands_config(tmp_path: Path) -> None:
    jobs = read_jobs(_write(tmp_path / "jobs.csv",
                            "source,driving,output,face_index,reference,crf,engine.transformer.expression,tracker.smoothing\n"
                            "me.jpg,talk.mp4,,1,source,23,0.5,no\n"
                            "me.jpg,/abs/face.png,sub/still.png,,,,,\n"), tmp_path / "out")
    first, second = jobs
    assert (first.id, first.line, second.id, second.line) == ("me__talk.mp4", 2, "sub/still.png", 3)
    c = first.config
    assert (c.source, c.driving) == (str(tmp_path / "me.jpg"), str(tmp_path / "talk.mp4"))
    assert c.output == str(tmp_path / "out" / "me__talk.mp4")
    assert (c.face_index, c.engine.transformer.reference, c.encoder.crf) == (1, "source", 23)
    assert c.engine.transformer.expression == 0.5 and c.tracker.smoothing is False and c.progress is False
    d = second.config
    assert d.engine.reenactor.kind == "geometric"
    assert d.driving == "/abs/face.png" and d.face_index is None and d.engine.transformer == TransformerConfig()


def test_expression_columns_are_read_like_the_main_commands_flags(tmp_path: Path) -> None:
    (job,) = read_jobs(_write(tmp_path / "jobs.csv", 'source,driving,expression,strength,au,pose,regions,pose_scale\n'
                                                     'a.jpg,b.mp4,happy,0.5,"AU12=0.8,AU4=-0.3",yaw=10,"eyes,mouth",0.5\n'),
                       tmp_path)
    e, t = job.config.engine.expression, job.config.engine.transformer
    assert (e.expression, e.strength, e.pose) == ("happy", 0.5, (10.0, 0.0, 0.0))
    assert e.au == (("AU12", 0.8, False), ("AU4", -0.3, True))
    assert (t.regions, t.rotation, t.translation) == (("eyes", "mouth"), 0.5, 0.5)


def test_jsonl_accepts_nested_settings_and_a_base_config(tmp_path: Path) -> None:
    path = _write(tmp_path / "jobs.jsonl", '{"source": "a.jpg", "driving": "b.mp4", "engine": {"hold_s": 2}}\n\n'
                                           '{"source": "a.jpg", "driving": "c.mp4", "face-index": 0, '
                                           '"reenactor": "neural", "device": "auto"}\n')
    jobs = read_jobs(path, tmp_path, {"encoder": {"crf": 30}, "engine": {"hold_s": 1.0}})
    assert [j.line for j in jobs] == [1, 3]
    assert jobs[0].config.engine.hold_s == 2 and jobs[1].config.engine.hold_s == 1.0
    assert jobs[0].config.encoder.crf == 30 and jobs[1].config.face_index == 0
    assert jobs[1].config.engine.reenactor.kind == "neural" and jobs[1].config.engine.model.device == "auto"
    assert jobs[0].config.engine.reenactor.kind == "geometric"


@pytest.mark.parametrize("name, text, expected", [
    ("jobs.csv", "source,driving,face_idx\na.jpg,b.mp4,1\n",
     "jobs.csv:1: unknown column 'face_idx'; did you mean 'face_index'?"),
    ("jobs.csv", "source,driving,engine.transformer.expresion\na.jpg,b.mp4,1\n",
     "jobs.csv:1: unknown column 'engine.transformer.expresion'; did you mean 'engine.transformer.expression'?"),
    ("jobs.csv", "source,driving,preview\na.jpg,b.mp4,1\n", "jobs.csv:1: column 'preview' is not a per-job setting"),
    ("jobs.csv", "source,driving,au\na.jpg,b.mp4,AU12\n", "jobs.csv:2: --au"),
    ("jobs.csv", "source,driving,face_index\na.jpg,b.mp4,1\na.jpg,c.mp4,two\n",
     "jobs.csv:3: 'face_index' must be int, got 'two'"),
    ("jobs.csv", "source,driving,reference\na.jpg,b.mp4,sideways\n", "jobs.csv:2: engine.transformer"),
    ("jobs.csv", "source,driving\na.jpg,b.mp4\nc.jpg,,\n", "jobs.csv:3:"),
    ("jobs.csv", "source,driving\na.jpg,b.mp4\n", None),
    ("jobs.csv", "source,driving,output\na.jpg,b.mp4,x.mp4\nc.jpg,d.mp4,x.mp4\n",
     "jobs.csv:3: output x.mp4 is also the output of line 2"),
    ("jobs.csv", "source,driving,output\na.jpg,b.mp4,../x.mp4\n",
     "jobs.csv:2: output '../x.mp4' must be a file name inside --out"),
    ("jobs.jsonl", '{"source": "a.jpg", "driving": "b.mp4"}\n'
                   '{"source": "a.jpg", "driving": "c.mp4", "tracker": {"nmae": "x"}}\n',
     "jobs.jsonl:2: unknown column 'tracker.nmae'; did you mean 'tracker.name'?"),
    ("jobs.jsonl", '{"source": "a.jpg", "driving": "b.mp4"}\n[1]\n', "jobs.jsonl:2: a line must be a JSON object"),
    ("jobs.txt", "source,driving\n", "unsupported extension '.txt'"),
    ("jobs.csv", "", "no job in the file"),
])
def test_bad_job_files_are_refused_with_the_line(tmp_path: Path, name: str, text: str, expected: str | None) -> None:
    path = _write(tmp_path / name, text)
    if expected is None:
        assert len(read_jobs(path, tmp_path)) == 1
        return
    with pytest.raises(ConfigError) as info:
        read_jobs(path, tmp_path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_cli_refuses_a_bad_job_file_before_rendering(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _write(tmp_path / "jobs.csv", "source,driving,colour\na.jpg,b.mp4,red\n")
    out = tmp_path / "renders"
    assert main(["batch", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"facepaint-live: error: {path}:1: unknown column 'colour'; see 'facepaint-live batch --help'"]
    assert not out.exists()


def test_input_hash_follows_content_and_settings_not_mtime(tmp_path: Path) -> None:
    src, drv = _write(tmp_path / "a.jpg", "portrait"), _write(tmp_path / "b.mp4", "clip")
    jobs = _write(tmp_path / "jobs.csv", "source,driving,output,crf\na.jpg,b.mp4,x.mp4,\na.jpg,b.mp4,y.mp4,20\n")
    plain, tuned = read_jobs(jobs, tmp_path)
    before = InputHasher().job(plain)
    assert before != InputHasher().job(tuned)
    os.utime(drv, (1, 1))
    assert InputHasher().job(plain) == before
    drv.write_text("clap")
    assert InputHasher().job(plain) != before
    src.unlink()
    assert InputHasher().job(plain) not in (before, InputHasher().job(tuned))


def test_manifest_skips_only_finished_jobs_whose_output_is_there(tmp_path: Path) -> None:
    (job,) = read_jobs(_write(tmp_path / "jobs.csv", "source,driving,output\na.jpg,b.mp4,x.mp4\n"), tmp_path)
    manifest = Manifest(tmp_path)
    manifest.record(JobResult(id="x.mp4", status="done", output=str(job.config.output), frames=3), "h1", 2)
    assert not manifest.up_to_date(job, "h1")  # no output file
    Path(str(job.config.output)).write_bytes(b"video")
    reread = Manifest(tmp_path)
    assert reread.up_to_date(job, "h1") and not reread.up_to_date(job, "h2")
    reread.record(reread.skipped(job), "h1", 2)
    entry = json.loads((tmp_path / "manifest.jsonl").read_text())
    assert (entry["status"], entry["frames"], entry["hash"], entry["line"]) == ("skipped", 3, "h1", 2)
    Manifest(tmp_path).record(JobResult(id="x.mp4", status="failed", output="x", error="boom"), "h1", 2)
    assert not Manifest(tmp_path).up_to_date(job, "h1")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_ray_missing_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import builtins

    real_import = builtins.__import__

    def no_ray(name: str, *args: object, **kwargs: object) -> object:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    path = _write(tmp_path / "jobs.csv", "source,driving\na.jpg,b.mp4\n")
    assert main(["batch", str(path), "--out", str(tmp_path / "out"), "--ray", "auto", "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "facepaint-live: error: --ray needs Ray: pip install 'facepaint-live[ray]'"]
