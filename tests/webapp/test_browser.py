"""A real browser (Debian's chromium driven by Playwright) uses the page like a person would."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists() and os.environ.get("CI") == "true":  # CI installs it: a missing browser is a failure
    raise RuntimeError("CI=true but Debian's chromium is missing: .ci/run should have installed it")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (apt-get install chromium)")
ARTIFACTS = Path(__file__).resolve().parents[2] / "tests" / "artifacts"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--no-first-run",
                                    # WebGL in software (SwiftShader) for the player's 3D view, without a GPU
                                    "--enable-unsafe-swiftshader"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.goto(server_url)
    page.wait_for_selector("#run", timeout=90_000)
    yield page
    context.close()


def _upload_motion(page, path: Path) -> None:
    page.get_by_text("…or a motion file instead").click()
    page.locator("#motion-input input[type=file]").set_input_files(str(path))
    page.wait_for_selector(f"#motion-input [aria-label='{path.name}']", timeout=90_000)


def _set_number(page, label: str, value: str) -> None:
    """Type into a number field until the page still shows the value a moment later: one CI run sent the
    field's default instead of a value typed right after its accordion opened (not reproduced since)."""
    field = page.get_by_label(label)
    for _ in range(10):
        field.fill(value)
        field.press("Tab")  # a number field commits its value on blur
        page.wait_for_timeout(300)
        if field.input_value() == value:
            return
    raise AssertionError(f"the page would not keep {value!r} in {label!r}")


def _choose_character(page, name: str) -> None:
    page.locator("#character input").click()
    page.get_by_role("option", name=name, exact=True).click()


def _player(page, timeout: float = 180_000):
    """The result player's frame, once its before/after video can play."""
    page.locator("#player iframe").wait_for(timeout=timeout)
    frame = page.locator("#player iframe").element_handle().content_frame()
    frame.wait_for_function("() => { const v = document.querySelector('#video-result');"
                            " return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=60_000)
    return frame


def test_motion_file_to_playing_video_and_download(page, small_bvh, tmp_path):
    _upload_motion(page, small_bvh)
    _choose_character(page, "Bob")
    page.locator("#semantic input").uncheck()
    page.locator("#run").click()
    _player(page)
    assert "Bob" in page.locator("#report").inner_text()
    for name in ("result.fbx", "result.bvh"):
        with page.expect_download() as info:
            page.locator(f"#downloads a[download='{name}']").click()
        info.value.save_as(tmp_path / name)
    assert (tmp_path / "result.fbx").read_bytes()[:18] == b"Kaydara FBX Binary"  # what Blender's exporter writes
    from core.io.bvh import read_bvh

    assert read_bvh(tmp_path / "result.bvh").num_frames == 45
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webapp_result.png"), full_page=True)


def test_sample_clip_with_semantic_optimisation_shows_both_videos_and_plots(page):
    """The page's main flow: the bundled clip, a built-in character, semantic optimisation on (its default)."""
    page.get_by_role("button", name="Use the sample clip").click()
    page.wait_for_selector("#video-input video", timeout=60_000)
    _choose_character(page, "Bob")
    assert page.locator("#semantic input").is_checked()
    page.get_by_role("button", name="Advanced").click()
    _set_number(page, "Trim end (s, 0 = whole clip)", "3")
    page.locator("#run").click()
    player = _player(page, timeout=300_000)
    player.get_by_role("button", name="Source with fitted skeleton").click()
    player.wait_for_function("() => { const v = document.querySelector('#video-source');"
                             " return v.readyState >= 2 && v.videoWidth > 0; }", timeout=30_000)
    player.get_by_role("button", name="3D view").click()
    player.wait_for_function("() => player.status3d.loaded", timeout=60_000)
    report = page.locator("#report").inner_text()
    assert "plays 90 frames" in report  # trimmed to 3 s at 30 fps; plain words first
    assert "Pen%" not in report  # the numbers are folded away until asked for
    page.get_by_text("Details: the numbers").click()
    report = page.locator("#report").inner_text()
    assert "Semantic supervisor: skeletal" in report and "Pen%" in report and "Semantic distance" in report
    for plot in ("#plot-pen-percent", "#plot-semantic-distance"):
        page.locator(plot).wait_for(state="visible", timeout=30_000)
    page.wait_for_timeout(2000)  # the plots draw
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webapp_sample_semantic_3d.png"), full_page=True)
    player.get_by_role("button", name="Before / after optimisation").click()
    player.evaluate("() => player.seek(1.6)")  # arms in front of the body: where the two differ
    player.wait_for_function("() => { const v = document.querySelector('#video-result');"
                             " return !v.seeking && Math.abs(v.currentTime - 1.6) < 0.05; }", timeout=10_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "webapp_sample_semantic.png"), full_page=True)


def test_bad_motion_file_shows_message_and_server_keeps_serving(page, small_bvh, tmp_path):
    broken = tmp_path / "broken.bvh"
    broken.write_text(small_bvh.read_text()[:400])
    _upload_motion(page, broken)
    page.locator("#run").click()
    toast = page.locator(".toast-body, [data-testid='toast-body']").first
    toast.wait_for(timeout=60_000)
    assert toast.is_visible() and "broken.bvh" in toast.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(1500)  # the toast fades in
    page.screenshot(path=str(ARTIFACTS / "webapp_bad_input.png"))
    # The server keeps serving: the next job with a good file succeeds.
    page.reload()
    page.wait_for_selector("#run", timeout=90_000)
    _upload_motion(page, small_bvh)
    page.locator("#semantic input").uncheck()
    page.locator("#run").click()
    _player(page)


# ----------------------------------------------------------------------------------------------------------
# Cancel, page gone, input preview, saved characters
# ----------------------------------------------------------------------------------------------------------

def _new_page(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#run", timeout=90_000)
    return page


def _start_long_job(page) -> None:
    """The sample clip, whole, with optimisation: about 20 s alone on a 2-core CPU; waits until pose runs."""
    page.get_by_role("button", name="Use the sample clip").click()
    page.wait_for_selector("#video-input video", timeout=60_000)
    _choose_character(page, "Bob")
    page.locator("#run").click()
    _wait_for_stage(page, timeout=60_000)


# Stage words the one progress display shows while a job runs (jobs.stages.Stage labels and their parts).
_STAGE_WORDS = ("reading", "pose", "retargeting", "optimising", "refinement", "rendering", "exporting")


def _wait_for_stage(page, timeout: float) -> None:
    """Until the page's progress display names a stage of a running job (not "queue: 1/1")."""
    page.wait_for_function("words => { const el = document.querySelector('#player');"
                           " const text = el ? el.innerText.toLowerCase() : '';"
                           " return !text.includes('queue') && words.some(w => text.includes(w)); }",
                           arg=list(_STAGE_WORDS), timeout=timeout)


def _queue_small_job(page, small_bvh) -> None:
    """A motion file without optimisation (a few seconds), submitted while another job runs: it waits."""
    _upload_motion(page, small_bvh)
    page.locator("#semantic input").uncheck()
    page.locator("#run").click()
    page.wait_for_function("() => (document.querySelector('#player')?.innerText || '').includes('queue')",
                           timeout=30_000)


def test_cancel_stops_the_running_job_and_the_next_job_starts_at_once(browser, server, small_bvh):
    import time

    a, b = _new_page(browser, server.url), _new_page(browser, server.url)  # two visitors
    try:
        folders_before = set(server.job_folders())
        _start_long_job(a)
        _queue_small_job(b, small_bvh)
        a.wait_for_timeout(1000)
        a.screenshot(path=str(_artifact("webapp_progress.png")), full_page=True)  # one progress display
        t = time.perf_counter()
        a.locator("#cancel").click()
        _wait_for_stage(b, timeout=15_000)  # the waiting job starts as soon as the cancelled one has stopped
        started = time.perf_counter() - t
        a.wait_for_function("() => document.querySelector('#job-status').innerText.includes('Cancelled')",
                            timeout=15_000)
        status = a.locator("#job-status").inner_text()
        stopped_after = float(status.split("stopped after ")[1].split(" s")[0])
        # Measured by the server, from the cancel to the job's end: about 1-2.5 s on a 2-core CPU (a fresh server's
        # first job also waits for its warm-up); the job alone had 15 s or more to go.
        assert stopped_after < 4.0, status
        assert started < 6.0, f"the next job started {started:.1f} s after Cancel"
        assert "cancelled" in a.locator("#report").inner_text()
        assert not a.locator(".toast-body, [data-testid='toast-body']").count()  # a cancel is not an error
        ARTIFACTS.mkdir(exist_ok=True)
        a.screenshot(path=str(ARTIFACTS / "webapp_cancelled.png"), full_page=True)
        _player(b, timeout=120_000)
        new = set(server.job_folders()) - folders_before
        assert len(new) == 1, new  # the cancelled job's folder is gone; the finished one's is kept
        assert (next(iter(new)) / "out" / "result.fbx").is_file()
    finally:
        a.context.close()
        b.context.close()


def test_a_job_whose_page_went_away_is_cancelled(browser, server, small_bvh):
    import time

    a, b = _new_page(browser, server.url), _new_page(browser, server.url)
    try:
        _start_long_job(a)
        _queue_small_job(b, small_bvh)
        t = time.perf_counter()
        a.context.close()  # the tab is closed mid-job
        _wait_for_stage(b, timeout=20_000)
        assert time.perf_counter() - t < 10.0
        assert "page closed: cancelling its job" in server.log.read_text()
    finally:
        b.context.close()


def test_an_mpeg4_part2_upload_gets_a_playable_preview(page, tmp_path):
    """Browsers cannot play MPEG-4 Part 2 (an old phone's or camera's codec); the page shows an H.264 copy."""
    import subprocess

    import imageio_ffmpeg

    from core.render.video import probe_video
    from jobs import SAMPLE_VIDEO

    clip = tmp_path / "old_phone.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(SAMPLE_VIDEO), "-t", "2",
                    "-c:v", "mpeg4", "-q:v", "5", str(clip)], check=True)
    assert probe_video(clip).codec == "mpeg4"
    page.locator("#video-file input[type=file]").set_input_files(str(clip))
    page.wait_for_function("() => { const v = document.querySelector('#video-input video');"
                           " return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=60_000)
    page.locator("#video-input video").evaluate("v => { v.currentTime = 1.0; }")  # it decodes past the start
    page.wait_for_function("() => document.querySelector('#video-input video').currentTime > 0.9", timeout=10_000)
    page.wait_for_timeout(500)
    toasts = page.locator(".toast-body, [data-testid='toast-body']").all_inner_texts()
    assert not [t for t in toasts if "not playable" in t], toasts
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webapp_mpeg4_preview.png"), full_page=True)


def test_a_saved_character_comes_back_after_a_server_restart(browser, own_character_fbx, small_bvh, tmp_path):
    from playwright.sync_api import expect

    from .conftest import start_server

    home = tmp_path / "smt-home"
    first = start_server(tmp_path / "first", home)
    try:
        page = _new_page(browser, first.url)
        page.locator("#character-input input[type=file]").set_input_files(str(own_character_fbx))
        page.wait_for_selector("#character-input [aria-label='my_kit.fbx']", timeout=60_000)
        expect(page.locator("#character input")).to_be_disabled()  # the upload is what a job would use: said so
        expect(page.locator("#character")).to_contain_text("Your file my_kit.fbx is used instead")
        page.locator("#save-character").click()
        page.wait_for_function("() => document.querySelector('#character-status').innerText.includes('Saved')",
                               timeout=120_000)
        assert page.locator("#character input").input_value() == "my_kit (saved)"
        page.context.close()
    finally:
        first.stop()
    assert (home / "characters" / "my_kit.npz").is_file() and (home / "characters" / "my_kit.fbx").is_file()
    second = start_server(tmp_path / "second", home)
    try:
        page = _new_page(browser, second.url)
        _choose_character(page, "my_kit (saved)")
        _upload_motion(page, small_bvh)
        page.locator("#semantic input").uncheck()
        page.locator("#run").click()
        page.wait_for_function("() => (document.querySelector('#report')?.innerText || '').includes('plays')",
                               timeout=180_000)
        assert "my_kit (saved character) plays 45 frames" in page.locator("#report").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "webapp_saved_character.png"), full_page=True)
        page.context.close()
    finally:
        second.stop()


# ----------------------------------------------------------------------------------------------------------
# The result player and the job history
# ----------------------------------------------------------------------------------------------------------

def _run_small_job(page, small_bvh) -> None:
    _upload_motion(page, small_bvh)
    _choose_character(page, "Bob")
    page.locator("#semantic input").uncheck()
    page.locator("#run").click()


def _image_spread(png: bytes) -> float:
    """Standard deviation of a screenshot's grey levels: a blank (one-colour) view gives about 0."""
    import io

    import numpy as np
    from PIL import Image

    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32).std())


def test_the_player_plays_pauses_scrubs_and_shows_the_3d_view_on_one_timeline(page, small_bvh):
    """Play, pause, frame steps, scrub, speed and loop on the before/after video, large enough to judge a hand;
    then the animated 3D character on the same timeline, with orbit."""
    _run_small_job(page, small_bvh)
    player = _player(page)
    state = "() => ({t: player.time, playing: player.playing, v: document.querySelector('#video-result').currentTime})"
    width = player.evaluate("() => document.querySelector('#video-result').getBoundingClientRect().width")
    assert width >= 800, f"the before/after video is shown {width:.0f} px wide"
    assert player.evaluate("() => player.duration") == pytest.approx(1.5)  # 45 frames at 30 fps

    player.get_by_role("button", name="Play").click()
    player.wait_for_function("() => document.querySelector('#video-result').currentTime > 0.3", timeout=10_000)
    player.get_by_role("button", name="Pause").click()
    paused = player.evaluate(state)
    page.wait_for_timeout(500)
    assert not paused["playing"] and player.evaluate(state)["v"] == pytest.approx(paused["v"], abs=0.05)

    scrub = player.locator("#scrub")
    box = scrub.bounding_box()
    scrub.click(position={"x": box["width"] * 0.75, "y": box["height"] / 2})  # a click on the timeline seeks
    player.wait_for_function("() => Math.abs(document.querySelector('#video-result').currentTime - player.time)"
                             " < 0.05", timeout=5_000)
    at = player.evaluate(state)
    assert at["t"] == pytest.approx(0.75 * 1.5, abs=0.15)
    player.get_by_role("button", name="One frame forward").click()
    assert player.evaluate("() => player.time") == pytest.approx(round(at["t"] * 30 + 1) / 30, abs=1e-3)
    assert "frame" in player.locator("#time").inner_text()
    page.screenshot(path=str(_artifact("webapp_player_before_after.png")), full_page=True)

    player.locator("#speed").select_option("0.5")
    assert player.evaluate("() => document.querySelector('#video-result').playbackRate") == 0.5
    player.locator("#loop").uncheck()  # without loop, playing stops at the end
    player.evaluate("() => player.seek(1.3)")
    player.get_by_role("button", name="Play").click()
    player.wait_for_function("() => !player.playing", timeout=10_000)
    assert player.evaluate("() => player.time") == pytest.approx(1.5, abs=0.05)
    player.locator("#loop").check()  # with loop, it goes round
    player.locator("#speed").select_option("2")
    player.get_by_role("button", name="Play").click()
    page.wait_for_timeout(1500)  # 3 s of clip at 2x: past the end at least once
    assert player.evaluate("() => player.playing")
    player.get_by_role("button", name="Pause").click()

    # The 3D view: the same clock poses the character; the pose follows the timeline, back and forth.
    player.get_by_role("button", name="3D view").click()
    player.wait_for_function("() => player.status3d.loaded || player.status3d.error", timeout=60_000)
    assert player.evaluate("() => player.status3d.error") is None
    hand = []
    for time_s in (0.2, 1.2, 0.2):
        player.evaluate(f"() => player.seek({time_s})")
        hand.append(player.evaluate("() => player.handPosition()"))
    assert hand[0] == pytest.approx(hand[2], abs=1e-6)
    assert max(abs(a - b) for a, b in zip(hand[0], hand[1])) > 0.02, hand  # the hand moved between 0.2 and 1.2 s
    canvas = player.locator("#view3d")
    assert _image_spread(canvas.screenshot()) > 5  # the character is drawn, not an empty background
    page.screenshot(path=str(_artifact("webapp_player_3d.png")), full_page=True)
    camera = player.evaluate("() => player.cameraPosition()")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 200, box["y"] + box["height"] / 2, steps=10)
    page.mouse.up()
    assert player.evaluate("() => player.cameraPosition()") != pytest.approx(camera, abs=1e-3)  # orbited
    assert player.evaluate("() => player.time") == pytest.approx(0.2, abs=1e-6)  # orbiting leaves the clock alone
    page.screenshot(path=str(_artifact("webapp_player_3d_orbited.png")), full_page=True)


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def _job_id(page) -> str:
    return page.locator("#player iframe").get_attribute("src").rsplit("/", 1)[1]


def test_jobs_stay_in_their_browsers_list_across_a_restart_and_only_there(browser, small_bvh, tmp_path):
    """A finished job is listed in its browser (a cookie) after a reload and a server restart, with its player and
    downloads; another browser neither lists nor fetches it; removing it removes its files."""
    from .conftest import start_server

    home = tmp_path / "smt-home"
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    first = start_server(tmp_path / "first", home)
    try:
        page = context.new_page()
        page.goto(first.url)
        page.wait_for_selector("#run", timeout=90_000)
        _run_small_job(page, small_bvh)
        _player(page)
        job = _job_id(page)
        page.wait_for_function("() => document.querySelector('#history input').value.includes('moves.bvh → Bob')",
                               timeout=30_000)
        page.close()
    finally:
        first.stop()
    second = start_server(tmp_path / "second", home)
    other = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(second.url)
        page.wait_for_selector("#run", timeout=90_000)
        page.locator("#history input").click()
        page.get_by_role("option", name=re.compile("moves.bvh → Bob")).click()
        player = _player(page, timeout=30_000)
        assert _job_id(page) == job and player.evaluate("() => player.duration") == pytest.approx(1.5)
        assert "Bob" in page.locator("#report").inner_text()
        with page.expect_download() as info:
            page.locator("#downloads a[download='result.fbx']").click()
        info.value.save_as(tmp_path / "again.fbx")
        assert (tmp_path / "again.fbx").read_bytes()[:18] == b"Kaydara FBX Binary"
        page.screenshot(path=str(_artifact("webapp_history.png")), full_page=True)

        stranger = other.new_page()
        stranger.goto(second.url)
        stranger.wait_for_selector("#run", timeout=90_000)
        stranger.locator("#history input").click()
        stranger.wait_for_timeout(500)
        assert stranger.get_by_role("option").count() == 0  # nothing listed to another browser
        for path in (f"smt/player/{job}", f"smt/jobs/{job}/result.fbx", f"smt/jobs/{job}/result.mp4"):
            assert stranger.request.get(second.url + path).status == 404, path
            assert page.request.get(second.url + path).status == 200, path

        page.locator("#remove-job").click()
        page.wait_for_function("() => document.querySelector('#report').innerText.includes('Removed')",
                               timeout=30_000)
        assert not second.job_folders() and page.locator("#player iframe").count() == 0
        assert page.request.get(second.url + f"smt/player/{job}").status == 404
    finally:
        other.close()
        context.close()
        second.stop()


def test_several_people_are_shown_numbered_and_the_one_picked_is_followed(page, tmp_path):
    """A clip with two people: the page shows the first frame with numbered boxes and a choice (Automatic until
    the user picks); picking person 1 (the smaller one, on the left) makes the job follow them, and the report
    says so. A one-person clip shows no choice."""
    from jobs import SAMPLE_VIDEO

    from ..synthetic import two_people_video

    clip = two_people_video(SAMPLE_VIDEO, tmp_path / "two_people.mp4", frames=30)
    page.locator("#video-file input[type=file]").set_input_files(str(clip))
    page.locator("#people-image img").wait_for(timeout=90_000)
    assert "2 people are in view" in page.locator("#people-note").inner_text()
    choice = page.locator("#person")
    assert choice.get_by_label("Automatic (person 2: the largest, most central)").is_checked()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "webapp_people_choice.png"), full_page=True)
    choice.get_by_label("Person 1", exact=True).check()
    _choose_character(page, "Bob")
    page.locator("#semantic input").uncheck()
    page.locator("#run").click()
    player = _player(page, timeout=300_000)
    player.get_by_role("button", name="Source with fitted skeleton").click()
    player.wait_for_function("() => { const v = document.querySelector('#video-source');"
                             " return v.readyState >= 2 && v.videoWidth > 0; }", timeout=30_000)
    report = page.locator("#report").inner_text()
    assert "person 1 (numbered left to right), as asked, was followed" in report, report
    page.screenshot(path=str(ARTIFACTS / "webapp_people_followed.png"), full_page=True)
    page.get_by_role("button", name="Use the sample clip").click()  # one person: the choice goes away
    page.wait_for_function("() => !document.querySelector('#people-image img')", timeout=90_000)
    assert not page.locator("#person").is_visible()
