"""What a visitor cannot do to the server, and how the server stops: no path or model field on the page, and
Ctrl-C stops it at once, mid-job, leaving no folder behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import ROOT, _free_port


def test_page_has_no_free_text_path_or_model_field():
    from webapp.ui import build_app

    config = build_app().get_config_file()
    inputs = [c for c in config["components"] if c.get("type") not in ("markdown", "html", "button", "form",
                                                                        "row", "column", "accordion", "group")]
    assert inputs, "the page has input components"
    assert not [c for c in inputs if c["type"] in ("textbox", "textarea", "code")]
    labels = " ".join(str(c.get("props", {}).get("label", "")) for c in inputs).lower()
    for word in ("weights", "path", "model id", "folder", "hub"):
        assert word not in labels
    shown = " ".join(str(c.get("props", {}).get("value", "")) for c in config["components"]
                     if c.get("type") == "markdown")
    assert "Semantic supervisor on this server: skeletal fallback" in shown
    from core.retarget.model import load_retargeter

    licence = getattr(load_retargeter(), "meta", {}).get("licence")
    assert f"Licence of the results: {licence}" in shown if licence else "Retargeter on this server: Copy" in shown


def test_ctrl_c_stops_the_server_mid_job_and_leaves_nothing(tmp_path, small_bvh):
    from gradio_client import Client, handle_file

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = _free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"web app did not start: {proc.stdout.read().decode()[-2000:]}")
                time.sleep(0.5)
        assert [p.name.startswith("smt-server-") for p in tmp.iterdir()].count(True) == 1
        client = Client(url, verbose=False)
        client.submit(video=None, motion_file=handle_file(str(small_bvh)), character="Bob", character_file=None,
                      semantic=True, smoothing=0.5, foot_locking=True, iterations=500, trim_start=0, trim_end=0,
                      api_name="/run")
        time.sleep(4)  # the job is running (reading, retargeting, optimising)
        t = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        assert time.perf_counter() - t < 5.0
        printed = proc.stdout.read().decode(errors="replace")
        assert f"Serving at http://127.0.0.1:{port}" in printed
        assert "share=True" not in printed  # Gradio's hint: nobody at this server can act on it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = sorted(p.name for p in tmp.iterdir())
    assert not [n for n in left if n.startswith(("smt-server-", "smt-blender-", "blender_", "smt-jobs", "gradio"))], left
