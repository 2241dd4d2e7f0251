"""The player's routes on a real server: a job's player and files go only to the browser whose job it is, the
videos can be sought (HTTP ranges), and the player's scripts come from this server."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from webapp.history import BROWSER_COOKIE, JobHistory, owner_of

ROOT = Path(__file__).resolve().parents[2]
A, B = "ab" * 24, "cd" * 24


def _get(url: str, browser: str | None = None, **headers) -> tuple[int, dict, bytes]:
    if browser:
        headers["Cookie"] = f"{BROWSER_COOKIE}={browser}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture(scope="module")
def job(server) -> str:
    """A finished job of browser A's, put into the server's history as a job would leave it."""
    history = JobHistory(server.home / "jobs", budget_bytes=10**9)
    folder = history.new_job(owner_of(A))
    (folder / "out").mkdir()
    files = {"preview": folder / "out" / "result.mp4", "glb": folder / "out" / "result.glb"}
    files["preview"].write_bytes(bytes(range(256)) * 40)
    files["glb"].write_bytes(b"glTF" + bytes(100))
    return history.finish(folder, "clip.bvh → Bob", "report", files, 45, 30.0).id


def test_the_player_is_served_to_its_browser_only(server, job):
    status, headers, body = _get(f"{server.url}smt/player/{job}", A)
    assert status == 200 and "text/html" in headers["content-type"]
    config = json.loads(re.search(rb'<script type="application/json" id="job">(.*?)</script>', body).group(1))
    assert config == {"frames": 45, "fps": 30.0, "result": f"../jobs/{job}/result.mp4", "source": None,
                      "glb": f"../jobs/{job}/result.glb", "result_label": "Before / after optimisation"}
    assert "default-src 'self'" in headers["content-security-policy"]  # the player loads only from this server
    for browser in (B, None, "not-an-id"):
        assert _get(f"{server.url}smt/player/{job}", browser)[0] == 404
    assert _get(f"{server.url}smt/player/{'0' * 32}", A)[0] == 404


def test_a_jobs_files_go_to_its_browser_only_and_can_be_sought(server, job):
    url = f"{server.url}smt/jobs/{job}/result.mp4"
    status, headers, body = _get(url, A)
    assert status == 200 and len(body) == 256 * 40
    status, headers, body = _get(url, A, Range="bytes=256-511")  # what a video element sends to seek
    assert status == 206 and body == bytes(range(256))
    assert _get(url, B)[0] == 404 and _get(url)[0] == 404
    for name in ("job.json", "..%2Fjob.json", "%2E%2E/job.json", "result.fbx"):
        assert _get(f"{server.url}smt/jobs/{job}/{name}", A)[0] == 404, name


def test_the_players_scripts_are_vendored_and_served_here(server):
    page = (ROOT / "webapp" / "player.html").read_text()
    assert not re.search(r"(src|href|from)\s*=?\s*[\"']https?:", page)  # no script or style from elsewhere
    for path in re.findall(r"\.\./static/([\w/.]+\.js)", page):
        status, headers, body = _get(f"{server.url}smt/static/{path}")
        assert status == 200 and "javascript" in headers["content-type"] and len(body) > 1000, path
        assert b"https://cdn" not in body and b"import(" not in body, path  # nothing fetched from the internet
    assert (ROOT / "webapp" / "static" / "three" / "LICENSE").read_text().startswith("The MIT License")
