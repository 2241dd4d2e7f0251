"""Running Blender (bpy) in a worker subprocess: arrays and a JSON request in, a JSON result and files out.

bpy must own a process's main thread, takes ~0.6 s to import and pins its own numpy, and the files it parses
for import come from strangers. So this module never imports it: :func:`run_blender_worker` starts
``core/io/blender_worker.py`` with this interpreter (``sys.executable -I``) in a fresh process group, under a
wall-clock time limit (the group is killed when it runs out) and an address-space limit (``RLIMIT_AS``), with
core dumps off and written files capped in size, in an empty working folder of the job, with an environment
reduced to an allow-list (:func:`worker_environment`: HOME and TMPDIR inside the job's folder). The limits
are set with ``resource.setrlimit`` by a two-line launcher that runs first in the child interpreter and then
executes the worker script, rather than in ``preexec_fn``: ``preexec_fn`` can deadlock a child forked from a
process with threads (the web server's). Every way the worker can fail becomes a :class:`BlenderWorkerError`
(an :class:`~core.errors.InputError`) whose message is the worker's own one-line explanation, or says that it
ran out of time or memory, or crashed.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError

__all__ = ["BlenderWorkerError", "BlenderTimeoutError", "BlenderUnavailableError", "WorkerResult",
           "run_blender_worker", "kill_running_workers", "worker_environment", "blender_available", "blender_version",
           "WORKER_SCRIPT", "DEFAULT_TIMEOUT_S", "DEFAULT_MEMORY_MB"]

WORKER_SCRIPT = Path(__file__).resolve().parent / "blender_worker.py"
DEFAULT_TIMEOUT_S = float(os.environ.get("SMT_BLENDER_TIMEOUT_S", 300))
CHECK_EVERY_S = 0.25  # how often a running worker's caller may stop it (run_blender_worker's check)
# bpy alone maps ~1.4 GB of address space (measured: 1.25 GB after import, 1.41 GB after reading a 28k-vertex
# GLB); 6 GB leaves room for big characters and long clips while stopping a hostile file well before the machine.
DEFAULT_MEMORY_MB = int(os.environ.get("SMT_BLENDER_MEMORY_MB", 6144))
MAX_OUTPUT_BYTES = 2 << 30  # RLIMIT_FSIZE for the worker: no runaway file writes


class BlenderWorkerError(InputError):
    """The Blender worker could not do the job; the message says why (from the worker, or how it died)."""


class BlenderTimeoutError(BlenderWorkerError):
    """The worker ran past its time limit and was killed."""


class BlenderUnavailableError(RuntimeError):
    """bpy (Blender as a Python module) is not installed in this environment."""


@dataclass
class WorkerResult:
    """What the worker answered: its JSON fields, its output arrays, its log and the wall time."""

    info: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    log: str = ""
    seconds: float = 0.0


def blender_available() -> bool:
    """Whether bpy can be imported here (checked without importing it)."""
    return importlib.util.find_spec("bpy") is not None


# Runs first in the child: limits on itself (they hold for everything it then runs), then the worker script.
# argv: -c LIMIT_AS_BYTES LIMIT_FSIZE_BYTES SCRIPT REQUEST
_LAUNCHER = ("import resource, runpy, sys\n"
             "for res, n in ((resource.RLIMIT_AS, sys.argv[1]), (resource.RLIMIT_FSIZE, sys.argv[2]), "
             "(resource.RLIMIT_CORE, 0)):\n"
             "    resource.setrlimit(res, (int(n), int(n)))\n"
             "sys.argv = sys.argv[3:]\n"
             "runpy.run_path(sys.argv[0], run_name='__main__')\n")


def _tail(text: str, lines: int = 6) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[-800:]


def run_blender_worker(request: dict, arrays: dict[str, np.ndarray] | None = None, *, what: str = "Blender job",
                       timeout: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
                       script: Path = WORKER_SCRIPT, workdir: Path | None = None,
                       check: Callable[[], None] | None = None) -> WorkerResult:
    """Run one worker job and return its answer.

    Args:
        request: the op and its fields (see ``blender_worker.py``); file paths in it must be absolute.
        arrays: numpy arrays the worker reads from the request's ``arrays`` file.
        what: how error messages name the job ("reading hero.fbx").
        timeout: wall-clock seconds, Blender's start included.
        memory_mb: address-space limit of the worker process.
        script: the worker script (tests pass stand-ins that hang or allocate).
        workdir: folder for the request/result files (a fresh temporary folder when None).
        check: called before the worker starts and every :data:`CHECK_EVERY_S` while it runs; whatever it raises
            (a cancelled job) kills the worker and propagates. Unlike :func:`kill_running_workers`, it cannot miss
            a worker that was still starting.

    Raises:
        BlenderUnavailableError: bpy is not installed (says how to install it).
        BlenderTimeoutError: the worker ran past ``timeout`` and was killed.
        BlenderWorkerError: the worker reported a problem, ran out of memory, or crashed.
    """
    if script == WORKER_SCRIPT and not blender_available():
        raise BlenderUnavailableError("FBX/GLB need Blender as a Python module, which is not installed: "
                                      "pip install bpy==5.0.1 (Python 3.11)")
    with tempfile.TemporaryDirectory(prefix="smt-blender-", dir=workdir) as tmp:
        tmp_path = Path(tmp)
        req = dict(request)
        req["result"] = str(tmp_path / "result.json")
        req["result_arrays"] = str(tmp_path / "result.npz")
        req["arrays"] = None
        if arrays:
            np.savez(tmp_path / "in.npz", **arrays)
            req["arrays"] = str(tmp_path / "in.npz")
        (tmp_path / "request.json").write_text(json.dumps(req))
        log_path = tmp_path / "worker.log"
        cwd = tmp_path / "home"  # empty: a relative path an importer might follow finds nothing
        cwd.mkdir()
        (tmp_path / "tmp").mkdir()
        env = worker_environment(home=cwd, tmpdir=tmp_path / "tmp")
        start = time.perf_counter()
        with open(log_path, "wb") as log:
            argv = [sys.executable, "-I", "-u", "-c", _LAUNCHER, str(int(memory_mb) << 20), str(MAX_OUTPUT_BYTES),
                    str(script), str(tmp_path / "request.json")]
            if check is not None:
                check()
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
            with _running_lock:
                _running.add(proc)
            try:
                returncode = _wait(proc, start + timeout, check)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise BlenderTimeoutError(f"{what}: Blender did not finish within {timeout:g} s and was stopped "
                                          "(a file this slow to read is either huge or malformed)") from None
            except BaseException:  # Ctrl-C in the parent: take the worker down too
                _kill_group(proc)
                raise
            finally:
                _kill_group(proc)  # threads or children left behind by a worker that exited
                with _running_lock:
                    _running.discard(proc)
        seconds = time.perf_counter() - start
        log_text = log_path.read_text(errors="replace")
        result_file = tmp_path / "result.json"
        if not result_file.exists():
            raise BlenderWorkerError(_crash_message(what, returncode, log_text, memory_mb))
        info = json.loads(result_file.read_text())
        if not info.get("ok"):
            limit = f" (the worker's memory limit is {memory_mb} MB)" if info.get("kind") == "memory" else ""
            raise BlenderWorkerError(f"{what}: {info.get('error', 'unknown error')}{limit}")
        out: dict[str, np.ndarray] = {}
        if Path(req["result_arrays"]).exists():
            with np.load(req["result_arrays"]) as z:
                out = {k: z[k] for k in z.files}
        return WorkerResult(info, out, log_text, seconds)


def _wait(proc: subprocess.Popen, deadline: float, check: Callable[[], None] | None) -> int:
    """``proc``'s exit status, waiting until ``deadline`` (perf_counter seconds; then TimeoutExpired) and calling
    ``check()`` every :data:`CHECK_EVERY_S` meanwhile."""
    while True:
        left = deadline - time.perf_counter()
        try:
            return proc.wait(timeout=max(0.0, min(left, CHECK_EVERY_S)) if check is not None else max(0.0, left))
        except subprocess.TimeoutExpired:
            if time.perf_counter() >= deadline:
                raise
        if check is not None:
            check()


# What the worker inherits from our environment, by name: the program search path, the locale (text encoding)
# and the thread counts (a job's CPU share). Everything else is left behind: a secret in the server's
# environment is not the worker's business, and BLENDER_*/PYTHON* variables could point it at start-up scripts.
_WORKER_ENV_NAMES = ("PATH", "LANG", "LANGUAGE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                     "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NUMEXPR_NUM_THREADS")


def worker_environment(home: Path, tmpdir: Path) -> dict[str, str]:
    """The worker's environment: an allow-list of ours, with HOME and TMPDIR inside the job's own folder.

    Blender makes a ``blender_XXXXXX`` session folder in TMPDIR and removes it only on a clean exit; inside the
    job's folder it goes when the job's folder goes, also after a kill.
    """
    env = {k: v for k, v in os.environ.items() if k in _WORKER_ENV_NAMES or k.startswith("LC_")}
    env.update(HOME=str(home), TMPDIR=str(tmpdir), TEMP=str(tmpdir), TMP=str(tmpdir))
    env.setdefault("PATH", os.defpath)
    return env


def blender_version(timeout: float = 60.0) -> str:
    """Blender's version as the worker sees it (starts a worker: ~1 s)."""
    return run_blender_worker({"op": "version"}, what="starting Blender", timeout=timeout).info["version"]


# Workers running now, so that a server shutting down can take them with it: each runs in a session of its own
# (a Ctrl-C meant for the server must not half-kill Blender), so no signal to the server reaches them.
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


def kill_running_workers() -> int:
    """Kill every worker this process started that is still running; return how many there were."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(procs)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL does not fail
        pass


def _crash_message(what: str, returncode: int, log: str, memory_mb: int) -> str:
    memory_hint = ("out of memory" in log.lower() or "memoryerror" in log.lower() or "bad_alloc" in log
                   or "malloc" in log.lower() or returncode in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS))
    how = (f"was killed by signal {signal.Signals(-returncode).name}" if returncode < 0
           else f"exited with status {returncode} without an answer")
    hint = (f"; the file may be corrupt or too large for the worker's {memory_mb} MB memory limit"
            if memory_hint else "")
    tail = _tail(log)
    return f"{what}: Blender {how}{hint}" + (f" (last output: {tail})" if tail else "")
