"""Each browser's jobs, kept on the server with their files until the user removes them or the server's space
for results (a budget its owner sets) runs out, oldest first.

A browser is known by a random id in a cookie (:data:`BROWSER_COOKIE`, made by the page's own script on the
first visit). The server keeps only the id's SHA-256, as the name of that browser's folder:
``<root>/<owner>/<job id>/`` holds the job's files (``out/``) and ``job.json`` (what the history list shows),
written last, so a folder without it is a job still running (or one a crash left, removed at start-up). Jobs are
listed and served only to the browser whose id hashes to their folder's name; a job id is 128 random bits.
A caller without the cookie (an API client) gets its files from Gradio's copies; its job folder goes after an
hour.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.io.files import atomic_file

__all__ = ["BROWSER_COOKIE", "COOKIE_SCRIPT", "owner_of", "JobEntry", "JobHistory"]

BROWSER_COOKIE = "smt_browser"
# Run by the page as it loads (Blocks' head): a browser without an id gets a random one, kept 400 days (the most
# Chromium keeps a cookie). Not HttpOnly: the page makes it; it names nothing but this browser's folder.
COOKIE_SCRIPT = f"""<script>
(() => {{
  if (document.cookie.split('; ').some(c => c.startsWith('{BROWSER_COOKIE}='))) return;
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const id = Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
  document.cookie = '{BROWSER_COOKIE}=' + id + '; path=/; max-age=' + 400 * 86400 + '; SameSite=Strict';
}})();
</script>"""
_BROWSER_ID = re.compile(r"[0-9a-f]{32,128}")
_JOB_ID = re.compile(r"[0-9a-f]{32}")
NOBODY = "nobody"  # the owner of jobs from callers without the cookie (API clients): listed to no one
NOBODY_MAX_AGE_S = 3600  # their files go back to them through Gradio's copies: kept an hour, like those


def owner_of(browser_id: str | None) -> str:
    """The folder name of a browser's jobs: its id's SHA-256 (32 hex digits), or :data:`NOBODY` for a missing
    or malformed id."""
    if not browser_id or not _BROWSER_ID.fullmatch(browser_id):
        return NOBODY
    return hashlib.sha256(browser_id.encode()).hexdigest()[:32]


@dataclass
class JobEntry:
    """One finished job as the history shows it.

    files: what it made, kind ("fbx", "glb", "bvh", "preview", "overlay") → file name inside ``folder / "out"``.
    frames, fps: the motion's length (the player's timeline). preview_label: what the preview video shows.
    plots: the report's per-frame plots as JSON lists, plot name → series name → [frames, values] (see
    ``jobs.report.JobReport.per_frame``), so a reopened job shows them again.
    """

    id: str
    created: float
    title: str
    report: str
    files: dict[str, str]
    frames: int
    fps: float
    preview_label: str = "Before / after optimisation"
    plots: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    folder: Path = field(default=Path(), compare=False, repr=False)

    @property
    def label(self) -> str:
        return f"{time.strftime('%d %b %H:%M', time.localtime(self.created))} · {self.title}"

    def path(self, kind: str) -> Path | None:
        name = self.files.get(kind)
        return self.folder / "out" / name if name else None


class JobHistory:
    """The jobs under ``root``, at most ``budget_bytes`` of them together (see the module docstring)."""

    def __init__(self, root: Path, budget_bytes: int) -> None:
        self.root = Path(root)
        self.budget_bytes = int(budget_bytes)

    def remove_unfinished(self) -> None:
        """Remove job folders without a ``job.json``: at start-up no job runs, so a crash or a kill left them."""
        for folder in self.root.glob("*/*"):
            if folder.is_dir() and not (folder / "job.json").is_file():
                shutil.rmtree(folder, ignore_errors=True)

    def new_job(self, owner: str) -> Path:
        """A new, empty job folder of ``owner``'s (the job writes into its ``out``). Jobs of :data:`NOBODY`
        older than :data:`NOBODY_MAX_AGE_S` are removed first: no one can open them again."""
        now = time.time()
        for old in (self.root / NOBODY).glob("*"):
            if now - old.stat().st_mtime > NOBODY_MAX_AGE_S:
                shutil.rmtree(old, ignore_errors=True)
        folder = self.root / owner / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def finish(self, folder: Path, title: str, report: str, files: dict[str, Path], frames: int,
               fps: float, preview_label: str = JobEntry.preview_label, plots: dict | None = None) -> JobEntry:
        """Record a finished job (``files``: kind → path inside ``folder / "out"``; ``plots``: the report's
        ``per_frame``, arrays welcome), then make room within the budget by removing the oldest jobs, never
        this one."""
        plots = {plot: {name: [np.asarray(frames_).tolist(), np.asarray(values).tolist()]
                        for name, (frames_, values) in series.items()} for plot, series in (plots or {}).items()}
        entry = JobEntry(id=folder.name, created=time.time(), title=title, report=report,
                         files={kind: Path(p).name for kind, p in files.items()}, frames=frames, fps=fps,
                         preview_label=preview_label, plots=plots, folder=folder)
        record = {k: v for k, v in asdict(entry).items() if k != "folder"}
        with atomic_file(folder / "job.json") as tmp:
            tmp.write_text(json.dumps(record, indent=1))
        self._keep_within_budget(keep=folder)
        return entry

    def list(self, owner: str) -> list[JobEntry]:
        """``owner``'s finished jobs, newest first (none for :data:`NOBODY`)."""
        if owner == NOBODY:
            return []
        entries = [self._read(f) for f in (self.root / owner).glob("*")] if (self.root / owner).is_dir() else []
        return sorted((e for e in entries if e is not None), key=lambda e: e.created, reverse=True)

    def get(self, owner: str, job_id: str | None) -> JobEntry | None:
        """``owner``'s finished job of that id, or None (another browser's, unknown, malformed, removed)."""
        if owner == NOBODY or not job_id or not _JOB_ID.fullmatch(job_id):
            return None
        return self._read(self.root / owner / job_id)

    def remove(self, owner: str, job_id: str | None) -> bool:
        entry = self.get(owner, job_id)
        if entry is None:
            return False
        shutil.rmtree(entry.folder, ignore_errors=True)
        return True

    def file(self, owner: str, job_id: str, name: str) -> Path | None:
        """The file ``name`` of ``owner``'s job, only if it is one the job recorded (no other name is served)."""
        entry = self.get(owner, job_id)
        if entry is None or name not in entry.files.values():
            return None
        path = entry.folder / "out" / name
        return path if path.is_file() else None

    def size(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def _read(self, folder: Path) -> JobEntry | None:
        try:
            record = json.loads((folder / "job.json").read_text())
            return JobEntry(**record, folder=folder)
        except (OSError, ValueError, TypeError):
            return None

    def _keep_within_budget(self, keep: Path) -> None:
        sizes = {f: sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
                 for f in self.root.glob("*/*") if f.is_dir()}
        total = sum(sizes.values())
        finished = [e for e in (self._read(f) for f in sizes) if e is not None and e.folder != keep]
        for entry in sorted(finished, key=lambda e: e.created):
            if total <= self.budget_bytes:
                break
            shutil.rmtree(entry.folder, ignore_errors=True)
            total -= sizes[entry.folder]
