"""A real browser (Debian's chromium driven by Playwright) uses the page like a person would."""
from __future__ import annotations

import os
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
                                    "--disable-component-update", "--disable-sync", "--no-first-run"])
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


def test_motion_file_to_playing_video_and_download(page, small_bvh, tmp_path):
    _upload_motion(page, small_bvh)
    page.locator("#character input").click()
    page.get_by_role("option", name="Bob").click()
    page.locator("#semantic input").uncheck()
    page.locator("#run").click()
    video = page.locator("#result-video video")
    video.wait_for(timeout=180_000)
    page.wait_for_function("() => { const v = document.querySelector('#result-video video');"
                           " return v && v.readyState >= 2 && v.videoWidth > 0; }", timeout=60_000)
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
    page.locator("#character input").click()
    page.get_by_role("option", name="Bob").click()
    assert page.locator("#semantic input").is_checked()
    page.get_by_role("button", name="Advanced").click()
    _set_number(page, "Trim end (s, 0 = whole clip)", "3")
    page.locator("#run").click()
    page.wait_for_function("() => ['#source-video', '#result-video'].every(id => {"
                           " const v = document.querySelector(id + ' video');"
                           " return v && v.readyState >= 2 && v.videoWidth > 0; })", timeout=300_000)
    report = page.locator("#report").inner_text()
    assert "90 frames" in report  # trimmed to 3 s at 30 fps
    assert "Semantic supervisor: skeletal" in report and "Pen%" in report and "Semantic distance" in report
    for plot in ("#plot-pen-percent", "#plot-semantic-distance"):
        page.locator(plot).wait_for(state="visible", timeout=30_000)
    page.locator("#model3d canvas").wait_for(timeout=30_000)
    page.wait_for_timeout(2000)  # the 3D view and the plots draw
    ARTIFACTS.mkdir(exist_ok=True)
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
    page.wait_for_function("() => { const v = document.querySelector('#result-video video');"
                           " return v && v.readyState >= 2; }", timeout=180_000)
