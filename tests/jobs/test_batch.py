"""Batch processing on a local Ray: good clips finish, a bad one fails alone with its message, the summary is
right, Ctrl-C leaves nothing half-written, and --resume finishes what an interrupted run left."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.io.bvh import write_bvh
from core.skeleton import canonical_skeleton

from ..synthetic import random_motion, tpose_offsets

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements.txt)")


def _clips(folder: Path, n: int, frames: int = 30) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        path = folder / f"take{k}.bvh"
        write_bvh(random_motion(canonical_skeleton(tpose_offsets(1.7)), frames=frames, fps=30, seed=k), path)
        paths.append(path)
    return paths


def test_a_bad_clip_fails_alone_and_the_summary_says_so(tmp_path):
    from jobs.batch import run_batch

    _clips(tmp_path / "takes", 3)
    (tmp_path / "takes" / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n")
    (tmp_path / "takes" / "notes.txt").write_text("not a clip, not picked up")
    seen = []
    rows = run_batch([tmp_path / "takes"], tmp_path / "out", workers=2, character="Ava", outputs=("bvh",),
                     previews=False, progress=lambda done, total, row: seen.append((done, total, row.status)))
    assert [Path(r.clip).name for r in rows] == ["broken.bvh", "take0.bvh", "take1.bvh", "take2.bvh"]
    assert [r.status for r in rows] == ["failed", "done", "done", "done"]
    assert "broken.bvh" in rows[0].error and rows[0].frames is None
    assert sorted(total for _, total, _ in seen) == [4] * 4 and max(done for done, _, _ in seen) == 4
    for r in rows[1:]:
        assert (Path(r.out_dir) / "result.bvh").is_file() and (Path(r.out_dir) / "job.json").is_file()
        assert r.frames == 30 and "retargeting" in r.seconds
    with open(tmp_path / "out" / "summary.csv") as f:
        table = list(csv.DictReader(f))
    assert [t["status"] for t in table] == ["failed", "done", "done", "done"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())[0]["error"] == rows[0].error
    assert not (tmp_path / "out" / "broken").exists() or not any((tmp_path / "out" / "broken").iterdir())


def test_ctrl_c_leaves_nothing_half_written_and_resume_finishes(tmp_path):
    _clips(tmp_path / "takes", 4, frames=60)
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "app.py"), "batch", str(tmp_path / "takes"), "--character", "Bob",
           "--out", str(out), "--workers", "1", "--semantic", "--quiet"]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not list(out.glob("*/job.json")):
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        assert time.time() < deadline, "no clip finished in 5 minutes"
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) != 0
    finished = {p.parent.name for p in out.glob("*/job.json")}
    assert 1 <= len(finished) < 4
    assert not list(out.glob("*/.staging-*"))  # the interrupted clip left no half-written files
    res = subprocess.run(cmd + ["--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = json.loads((out / "summary.json").read_text())
    assert {Path(r["clip"]).stem for r in rows if r["status"] == "skipped"} == finished
    assert all(r["status"] in ("done", "skipped") for r in rows) and len(rows) == 4
    assert all((out / f"take{k}" / "result.fbx").is_file() for k in range(4))
