"""A real server for the web tests: `python app.py` in a subprocess on a free local port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", TMPDIR=str(tmp_path_factory.mktemp("server-tmp")))
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"web app did not start; log:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def small_bvh(tmp_path_factory) -> Path:
    """A 1.5 s clip on a Mixamo-named rig, written by the project's own BVH writer."""
    from core.io.bvh import write_bvh
    from core.skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS, Skeleton

    from ..synthetic import random_motion, tpose_offsets

    sk = Skeleton(tuple("mixamorig:" + n for n in CANONICAL_JOINTS), CANONICAL_PARENTS, tpose_offsets(1.7))
    path = tmp_path_factory.mktemp("clip") / "moves.bvh"
    write_bvh(random_motion(sk, frames=45, fps=30, seed=5), path, scale=100.0)
    return path
