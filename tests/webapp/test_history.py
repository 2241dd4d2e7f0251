"""The job history alone (webapp.history): each browser sees and gets only its own jobs, within a disk budget,
oldest removed first."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from webapp.history import NOBODY, NOBODY_MAX_AGE_S, JobHistory, owner_of

A, B = "a" * 48, "0123456789abcdef" * 3  # two browsers' ids, as the page's script makes them (48 hex digits)


def _job(history: JobHistory, browser: str, size: int = 1000, title: str = "clip.bvh → Bob") -> str:
    """A finished job of ``browser``'s with a ``size``-byte FBX and a small preview; returns its id."""
    folder = history.new_job(owner_of(browser))
    out = folder / "out"
    out.mkdir()
    (out / "result.fbx").write_bytes(b"F" * size)
    (out / "result.mp4").write_bytes(b"M" * 10)
    entry = history.finish(folder, title, "**Bob** plays 45 frames", {"fbx": out / "result.fbx",
                                                                        "preview": out / "result.mp4"}, 45, 30.0)
    time.sleep(0.01)  # distinct creation times: "oldest first" is well defined
    return entry.id


def test_a_browser_id_becomes_a_folder_name_and_a_bad_one_nobody():
    assert owner_of(A) == owner_of(A) != owner_of(B)
    assert len(owner_of(A)) == 32 and A not in owner_of(A)  # the id itself is never stored
    for bad in (None, "", "short", "../../etc", "A" * 48, A + "/x", "g" * 48):
        assert owner_of(bad) == NOBODY


def test_jobs_are_listed_and_served_only_to_their_browser(tmp_path):
    history = JobHistory(tmp_path, budget_bytes=10**9)
    first, second = _job(history, A, title="walk.bvh → Bob"), _job(history, A, title="run.bvh → Kit")
    other = _job(history, B)
    assert [e.id for e in history.list(owner_of(A))] == [second, first]  # newest first
    assert [e.id for e in history.list(owner_of(B))] == [other]
    assert history.list(NOBODY) == []
    entry = history.get(owner_of(A), first)
    assert entry.title == "walk.bvh → Bob" and entry.frames == 45 and "walk.bvh" in entry.label
    assert entry.path("fbx").read_bytes() == b"F" * 1000
    # Another browser cannot get, serve or remove it, whatever it sends.
    assert history.get(owner_of(B), first) is None and history.file(owner_of(B), first, "result.fbx") is None
    assert not history.remove(owner_of(B), first) and history.get(owner_of(A), first) is not None
    assert history.file(owner_of(A), first, "result.fbx") == entry.path("fbx")
    for name in ("job.json", "../job.json", "out/result.fbx", "/etc/passwd", "missing.glb"):
        assert history.file(owner_of(A), first, name) is None, name
    for job_id in (None, "", "..", first.upper(), first + "/..", "x" * 32):
        assert history.get(owner_of(A), job_id) is None


def test_the_budget_removes_the_oldest_jobs_first_never_the_new_one(tmp_path):
    history = JobHistory(tmp_path, budget_bytes=3000)  # room for two jobs of ~1.3 kB (a 1000-byte FBX, the rest)
    first, second = _job(history, A), _job(history, B)
    third = _job(history, A)
    assert history.get(owner_of(A), first) is None  # the oldest, whoever's
    assert history.get(owner_of(B), second) and history.get(owner_of(A), third)
    assert history.size() <= 3000
    huge = _job(history, B, size=5000)  # alone over the budget: kept, everything older goes
    assert [e.id for e in history.list(owner_of(B))] == [huge] and history.list(owner_of(A)) == []


def test_removing_a_job_and_cleaning_up_after_a_crash(tmp_path):
    history = JobHistory(tmp_path, budget_bytes=10**9)
    kept, removed = _job(history, A), _job(history, A)
    assert history.remove(owner_of(A), removed) and not (tmp_path / owner_of(A) / removed).exists()
    running = history.new_job(owner_of(A))  # no job.json: running, or left by a crash
    assert [e.id for e in history.list(owner_of(A))] == [kept]
    history.remove_unfinished()  # at start-up nothing runs
    assert not running.exists() and history.get(owner_of(A), kept) is not None


def test_jobs_of_callers_without_a_browser_id_go_after_an_hour(tmp_path):
    history = JobHistory(tmp_path, budget_bytes=10**9)
    old = history.new_job(NOBODY)
    recent = history.new_job(NOBODY)
    hour_ago = time.time() - NOBODY_MAX_AGE_S - 10
    os.utime(old, (hour_ago, hour_ago))
    history.new_job(NOBODY)
    assert not old.exists() and recent.exists()


@pytest.mark.parametrize("budget", [0, 1])
def test_a_tiny_budget_keeps_only_the_newest_job(tmp_path: Path, budget):
    history = JobHistory(tmp_path, budget_bytes=budget)
    _job(history, A)
    newest = _job(history, A)
    assert [e.id for e in history.list(owner_of(A))] == [newest]


def test_a_reopened_job_brings_back_its_per_frame_plots(tmp_path):
    """The report's plots (numpy arrays per series) survive the job's record; a record from before plots were
    kept reads as "no plots"."""
    import numpy as np

    from jobs import per_frame_table

    history = JobHistory(tmp_path, budget_bytes=10**9)
    folder = history.new_job(owner_of(A))
    (folder / "out").mkdir()
    plots = {"pen_percent": {"before": (np.array([0, 5, 10]), np.array([1.5, 2.0, 0.5], np.float32)),
                             "after": (np.array([0, 5, 10]), np.array([0.0, 0.25, 0.0]))}}
    entry = history.finish(folder, "clip → Bob", "report", {}, 11, 30.0, plots=plots)
    table = per_frame_table(history.get(owner_of(A), entry.id).plots["pen_percent"])
    assert list(table.columns) == ["frame", "value", "series"] and len(table) == 6
    assert table[table.series == "before"].value.tolist() == [1.5, 2.0, 0.5]
    assert table[table.series == "after"].frame.tolist() == [0, 5, 10]
    old = _job(history, A)  # no plots given
    assert history.get(owner_of(A), old).plots == {}


def test_the_page_shows_a_reopened_jobs_plots(tmp_path, monkeypatch):
    import types

    import numpy as np

    from webapp import ui
    from webapp.history import BROWSER_COOKIE

    history = JobHistory(tmp_path, budget_bytes=10**9)
    monkeypatch.setattr(ui._server, "history", history)
    folder = history.new_job(owner_of(A))
    (folder / "out").mkdir()
    pen = {"before": (np.arange(3), np.array([1.0, 2.0, 3.0])), "after": (np.arange(3), np.zeros(3))}
    entry = history.finish(folder, "clip → Bob", "report", {}, 3, 30.0, plots={"pen_percent": pen})
    _player, _downloads, report, *plots = ui.open_job(entry.id, types.SimpleNamespace(cookies={BROWSER_COOKIE: A}))
    assert report == "report" and len(plots) == len(ui.PLOTS)
    shown = dict(zip(ui.PLOTS, plots))
    assert shown["pen_percent"].visible and len(shown["pen_percent"].value["data"]) == 6
    assert not shown["semantic_distance"].visible
