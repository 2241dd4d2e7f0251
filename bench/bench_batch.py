"""Batch: 8 clips (6 BVH, 2 short videos) onto Ava with 1 and 2 local Ray workers, and through a local two-node Ray cluster.

The cluster is two `ray start` processes on 127.0.0.1 (a head with one CPU, a second node with one CPU) that
the bench starts and stops itself, driven by `python app.py batch --address` in its own process: it shows the
cluster path end to end (Ray start and the CLI's start included), not a speed-up (both nodes share this
machine's two cores). Each row's clips/min beside the one-worker run of the same bench.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.io.bvh import write_bvh
from core.skeleton import canonical_skeleton
from jobs import SAMPLE_VIDEO
from jobs.batch import run_batch

from .common import ROOT, Row

CLIPS = 8


def _make_inputs(folder: Path) -> None:
    import numpy as np

    from core.motion import Motion

    folder.mkdir(parents=True)
    sk = canonical_skeleton(np.array(_offsets()))
    rng = np.random.default_rng(0)
    for k in range(CLIPS - 2):  # 2 s at 30 fps each, gently moving
        T = 60
        angles = 0.2 * np.sin(np.linspace(0, 6, T))[:, None, None] * rng.normal(size=(1, 22, 3))
        half = np.linalg.norm(angles, axis=-1, keepdims=True) / 2
        q = np.concatenate([np.cos(half), np.sin(half) * angles / np.maximum(2 * half, 1e-9)], -1)
        root = np.tile(sk.offsets[0], (T, 1))
        write_bvh(Motion(sk, q, root, 30.0, f"take{k}"), folder / f"take{k}.bvh")
    import imageio_ffmpeg

    for k in range(2):  # 2 s of the sample clip
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(SAMPLE_VIDEO),
                        "-t", "2", "-c", "copy", str(folder / f"video{k}.mp4")], check=True, timeout=60)


def _offsets():
    from core.skeleton import CANONICAL_JOINTS

    # A plain 1.7 m T-pose: bones along +Y for the spine and legs (down), +/-X for the arms.
    table = {"Hips": (0, 0.95, 0), "Spine": (0, 0.1, 0), "Spine1": (0, 0.12, 0), "Spine2": (0, 0.12, 0),
             "Neck": (0, 0.15, 0), "Head": (0, 0.1, 0), "LeftShoulder": (0.05, 0.1, 0),
             "LeftArm": (0.12, 0, 0), "LeftForeArm": (0.27, 0, 0), "LeftHand": (0.25, 0, 0),
             "RightShoulder": (-0.05, 0.1, 0), "RightArm": (-0.12, 0, 0), "RightForeArm": (-0.27, 0, 0),
             "RightHand": (-0.25, 0, 0), "LeftUpLeg": (0.09, -0.05, 0), "LeftLeg": (0, -0.42, 0),
             "LeftFoot": (0, -0.42, 0), "LeftToeBase": (0, -0.05, 0.12), "RightUpLeg": (-0.09, -0.05, 0),
             "RightLeg": (0, -0.42, 0), "RightFoot": (0, -0.42, 0), "RightToeBase": (0, -0.05, 0.12)}
    return [table[n] for n in CANONICAL_JOINTS]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _timed(folder: Path, out: Path, **kw) -> tuple[float, int]:
    t = time.perf_counter()
    rows = run_batch([folder], out, character="Ava", **kw)
    return time.perf_counter() - t, sum(r.status == "done" for r in rows)


def run() -> list[Row]:
    rows: list[Row] = []
    # Ray >= 2.59 asks nodes joining a cluster for a shared token (token authentication): one for this bench.
    token = Path(tempfile.mkdtemp()) / "ray_token"
    token.write_text(secrets.token_hex(32))
    auth = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    env = dict(os.environ, **auth)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _make_inputs(tmp / "takes")
        base = None
        for workers in (1, 2):
            wall, done = _timed(tmp / "takes", tmp / f"out{workers}", workers=workers)
            rate = 60 * done / wall
            base = base or rate
            rows.append(Row(f"local Ray, {workers} worker(s)", rate, "clips/min", note=f"{done}/{CLIPS} clips in "
                            f"{wall:.1f} s (Ray start included); {rate / base:.2f}x one worker"))
        port = _free_port()
        ray = [sys.executable, "-m", "ray.scripts.scripts"]
        # Two loopback addresses, one per node (Ray takes 127.0.0.1 for "this host" and swaps in the interface's).
        head = ["start", "--head", "--node-ip-address=127.0.0.3", f"--port={port}", "--num-cpus=1",
                "--include-dashboard=false", "--disable-usage-stats"]
        try:
            subprocess.run(ray + head, check=True, env=env, capture_output=True, timeout=120)
            subprocess.run(ray + ["start", f"--address=127.0.0.3:{port}", "--node-ip-address=127.0.0.2",
                                  "--num-cpus=1", "--disable-usage-stats"],
                           check=True, env=env, capture_output=True, timeout=120)
            # The CLI, as a user on a cluster runs it (a driver process of its own, joining with the token).
            t = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "app.py"), "batch", str(tmp / "takes"), "--character", "Ava",
                            "--out", str(tmp / "out_cluster"), "--address", f"127.0.0.3:{port}", "--quiet"],
                           check=True, env=env, capture_output=True, timeout=900)
            wall = time.perf_counter() - t
            done = len(list((tmp / "out_cluster").glob("*/job.json")))
            rate = 60 * done / wall
            rows.append(Row("two-node Ray cluster on loopback (CLI --address)", rate, "clips/min",
                            note=f"{done}/{CLIPS} clips in {wall:.1f} s; {rate / base:.2f}x one local worker"))
        finally:
            subprocess.run(ray + ["stop", "--force"], env=env, capture_output=True, timeout=120)
            shutil.rmtree(token.parent, ignore_errors=True)
    return rows
