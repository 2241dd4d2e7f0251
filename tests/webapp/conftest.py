"""A real server for the web tests: `python app.py` in a subprocess on a free local port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running ``python app.py``: its address, its TMPDIR (the workspace is made in there), its log, its
    ``SMT_HOME`` (character library and job history)."""

    url: str
    tmp: Path
    log: Path
    proc: subprocess.Popen
    home: Path

    def job_folders(self) -> list[Path]:
        """The job folders in the server's job history now (one folder per browser, one per job in it)."""
        return [p for p in self.home.glob("jobs/*/*")]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(folder: Path, smt_home: Path) -> Server:
    """Start the app with TMPDIR in ``folder`` and its character library in ``smt_home``; wait until it serves."""
    port = _free_port()
    tmp = folder / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    log = folder / "server.log"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", TMPDIR=str(tmp), SMT_HOME=str(smt_home))
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
    return Server(url, tmp, log, proc, smt_home)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    folder = tmp_path_factory.mktemp("server")
    s = start_server(folder, folder / "smt-home")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def server_url(server) -> str:
    return server.url


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


@pytest.fixture(scope="session")
def own_character_fbx(tmp_path_factory) -> Path:
    """A rigged character file as a user would upload it: the built-in Kit written by Blender's FBX exporter."""
    from core.character_library import load_character
    from core.io.export import export_character_motion_files
    from core.motion import Motion

    kit = load_character("Kit")
    path = tmp_path_factory.mktemp("character") / "my_kit.fbx"
    export_character_motion_files(kit, Motion.rest(kit.skeleton, 2), [path])
    return path
