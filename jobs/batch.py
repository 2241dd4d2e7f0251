"""Many clips at once: each clip one :func:`~jobs.run.run_job`, spread over CPUs (or machines) by Ray.

``run_batch`` collects the inputs (files, and the videos and motion files in folders), gives each clip its own
output subfolder, and submits one Ray task per clip: a local Ray with ``workers`` CPUs (started and shut down
here), or an existing cluster (``address``: ``ray start --head`` on one machine, ``ray start --address`` on the
others). Every task asks for one CPU and pins torch to one thread, so tasks do not fight over cores. Inputs and
outputs travel **by path**: the machines must share a file system (the same paths everywhere); Ray's object store
carries only the small specs and result rows.

As clips finish, ``summary.csv`` and ``summary.json`` are rewritten (atomically) with one row per clip: status,
seconds per stage, Pen% and JDM before/after, warnings, the error message. A clip that fails is reported and the
others go on. A finished clip's folder holds ``job.json`` (its row), written last, so ``resume=True`` skips
exactly the clips that completed. Ctrl-C cancels the running tasks and removes their half-written staging
folders; finished clips stay.

Ray is told to stay on a loopback address when it starts a local instance (:data:`LOCAL_RAY_IP`), and never
to report usage statistics.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from core.errors import InputError
from core.io.files import atomic_file

from .spec import MOTION_SUFFIXES, JobSpec

__all__ = ["VIDEO_SUFFIXES", "BatchRow", "collect_inputs", "run_batch", "DONE_FILE"]

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg")
DONE_FILE = "job.json"
# The local Ray's address. Not 127.0.0.1: Ray takes that for "this host" and swaps in the network interface's
# address (measured: 192.0.2.2 here); any other loopback address it takes as given, so nothing leaves loopback.
LOCAL_RAY_IP = "127.0.0.3"
SUMMARY_FIELDS = ("clip", "status", "seconds", "frames", "pen_before", "pen_after", "jdm_before", "jdm_after",
                  "warnings", "error", "out_dir")


@dataclass
class BatchRow:
    """One clip's line in the summary. status: "done", "failed" or "skipped" (done by an earlier run)."""

    clip: str
    status: str
    out_dir: str
    seconds: dict[str, float] = field(default_factory=dict)
    frames: int | None = None
    pen_before: float | None = None
    pen_after: float | None = None
    jdm_before: float | None = None
    jdm_after: float | None = None
    warnings: list[str] = field(default_factory=list)
    error: str = ""


def collect_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The clips named by files and folders (a folder's videos and motion files, sorted, not its subfolders).

    Raises:
        InputError: a path that does not exist, a file of another kind, or no clip at all.
    """
    clips: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            clips += sorted(f for f in p.iterdir() if f.is_file() and not f.is_symlink()
                            and f.suffix.lower() in VIDEO_SUFFIXES + MOTION_SUFFIXES)
        elif p.is_file():
            if p.suffix.lower() not in VIDEO_SUFFIXES + MOTION_SUFFIXES:
                raise InputError(f"{p.name}: not a video or motion file ({', '.join(VIDEO_SUFFIXES + MOTION_SUFFIXES)})")
            clips.append(p)
        else:
            raise InputError(f"no such file or folder: {p}")
    if not clips:
        raise InputError("no videos or motion files among the inputs")
    return clips


def _out_dirs(clips: list[Path], out: Path) -> list[Path]:
    """One subfolder per clip, named after it (``walk``, ``walk-2`` when two clips share a name)."""
    seen: dict[str, int] = {}
    dirs = []
    for clip in clips:
        n = seen.get(clip.stem, 0) + 1
        seen[clip.stem] = n
        dirs.append(out / (clip.stem if n == 1 else f"{clip.stem}-{n}"))
    return dirs


def _row_of(spec: JobSpec, clip: Path) -> BatchRow:
    """Run one clip (inside a Ray task) and describe it; an input problem or a bug becomes a failed row."""
    from .run import run_job

    row = BatchRow(clip=str(clip), status="done", out_dir=str(spec.out_dir))
    t = time.perf_counter()
    try:
        result = run_job(spec)
    except InputError as exc:
        row.status, row.error = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - one clip's bug must not stop the batch; the row says what it was
        row.status, row.error = "failed", f"unexpected {type(exc).__name__}: {exc}"
    else:
        r = result.report
        row.seconds, row.frames, row.warnings = dict(r.seconds), r.frames, list(r.warnings)
        if "pen_percent" in r.metrics:
            row.pen_before, row.pen_after = r.metrics["pen_percent"].before, r.metrics["pen_percent"].after
        if "jdm_error" in r.metrics:
            row.jdm_before, row.jdm_after = r.metrics["jdm_error"].before, r.metrics["jdm_error"].after
        with atomic_file(spec.out_dir / DONE_FILE) as tmp:
            tmp.write_text(json.dumps(asdict(row), indent=1))
    row.seconds["total"] = time.perf_counter() - t
    return row


def _ray_task(spec: JobSpec, clip: Path) -> dict:
    import torch

    torch.set_num_threads(1)  # the task's CPU share: one core, so tasks side by side do not stall each other
    return asdict(_row_of(spec, clip))


def _write_summary(rows: list[BatchRow], out: Path) -> None:
    with atomic_file(out / "summary.json") as tmp:
        tmp.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    with atomic_file(out / "summary.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SUMMARY_FIELDS)
        for r in rows:
            writer.writerow([r.clip, r.status, f"{sum(v for k, v in r.seconds.items() if k != 'total'):.2f}",
                             r.frames, r.pen_before, r.pen_after, r.jdm_before, r.jdm_after,
                             " | ".join(r.warnings), r.error, r.out_dir])


def _start_ray(workers: int, address: str | None):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise InputError("batch processing needs Ray: pip install ray==2.60.0") from None
    if address:
        host = address.rsplit(":", 1)[0]
        # A cluster on this machine's loopback (the bench's): the driver stays on loopback too.
        ray.init(address=address, log_to_driver=False, **({"_node_ip_address": host} if host.startswith("127.") else {}))
    else:
        ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address=LOCAL_RAY_IP, log_to_driver=False)
    return ray


def run_batch(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike, *, workers: int | None = None,
              address: str | None = None, resume: bool = False,
              progress: Callable[[int, int, BatchRow], None] | None = None, **options) -> list[BatchRow]:
    """Run every clip of ``inputs`` as one job (``options``: any :class:`JobSpec` field: character, semantic,
    root, ...) into ``out_dir/<clip name>/``; return the rows in input order (see the module docstring).

    Raises:
        InputError: no clips, bad options (checked on the first clip's spec before anything starts).
    """
    clips = collect_inputs(inputs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    specs = [JobSpec(source=c, out_dir=d, **options) for c, d in zip(clips, _out_dirs(clips, out))]
    rows: list[BatchRow | None] = [None] * len(specs)
    todo = []
    for k, spec in enumerate(specs):
        done = spec.out_dir / DONE_FILE
        if resume and done.is_file():
            row = BatchRow(**json.loads(done.read_text()))
            row.status = "skipped"
            rows[k] = row
        else:
            todo.append(k)
    finished = len(specs) - len(todo)
    if progress is not None:
        for k in range(len(specs)):
            if rows[k] is not None:
                progress(finished, len(specs), rows[k])
    if todo:
        ray = _start_ray(workers or os.cpu_count() or 1, address)
        task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        pending = {task.remote(specs[k], specs[k].source): k for k in todo}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                k = pending.pop(ready[0])
                try:
                    rows[k] = BatchRow(**ray.get(ready[0]))
                except Exception as exc:  # noqa: BLE001 - the task's process died (killed, out of memory)
                    rows[k] = BatchRow(clip=str(specs[k].source), status="failed", out_dir=str(specs[k].out_dir),
                                       error=f"the worker running this clip died ({type(exc).__name__})")
                finished += 1
                _write_summary([r for r in rows if r is not None], out)
                if progress is not None:
                    progress(finished, len(specs), rows[k])
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            for k in pending.values():  # a killed job leaves its staging folder: nothing half-written stays
                for stage in specs[k].out_dir.glob(".staging-*"):
                    shutil.rmtree(stage, ignore_errors=True)
            raise
        finally:
            ray.shutdown()
    final = [r for r in rows if r is not None]
    _write_summary(final, out)
    return final
