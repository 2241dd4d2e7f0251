"""The page's API with gradio_client, as a script or another app would use it."""
from __future__ import annotations

import pytest

from core.io.bvh import read_bvh
from core.render.video import probe_video


def _args(**overrides) -> dict:
    from gradio_client import handle_file

    args = dict(video=None, motion_file=None, character="Ava", character_file=None, semantic=False, smoothing=0.5,
                foot_locking=True, iterations=30, trim_start=0, trim_end=0,
                root="Starts at the origin", skeleton_only=False, fbx_target="Unity (Mixamo layout)")
    args.update(overrides)
    for key in ("video", "motion_file", "character_file"):
        if args[key] is not None:
            args[key] = handle_file(str(args[key]))
    return args


def _run(client, **overrides):
    return client.predict(**_args(**overrides), api_name="/run")


@pytest.fixture(scope="module")
def client(server_url):
    from gradio_client import Client

    return Client(server_url, verbose=False)


def test_motion_file_job_returns_playable_video_and_downloads(client, small_bvh):
    source_video, result_video, glb, files, report, *_plots = _run(client, motion_file=small_bvh, character="Brute")
    info = probe_video(result_video)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p" and info.frames == 45
    bvh = next(f for f in files if f.endswith(".bvh"))
    motion = read_bvh(bvh)
    assert motion.num_frames == 45 and len(motion.skeleton.names) == 52  # Brute's 22 body and 30 finger joints
    assert "Brute" in report and "Time per stage" in report


def test_bad_input_is_reported_and_next_job_runs(client, small_bvh, tmp_path):
    from gradio_client.exceptions import AppError

    broken = tmp_path / "broken.bvh"
    broken.write_text(small_bvh.read_text()[:300])
    with pytest.raises(AppError, match="broken.bvh"):
        _run(client, motion_file=broken)
    with pytest.raises(AppError, match="Upload a video"):
        _run(client)
    *_, report, _pen_plot, _semantic_plot = _run(client, motion_file=small_bvh)
    assert "45 frames" in report


def test_video_job_returns_fbx_that_reimports(client):
    from core.io.character_import import import_motions
    from jobs import SAMPLE_VIDEO

    source_video, result_video, glb, files, report, *_plots = _run(client, video=SAMPLE_VIDEO, character="Kit",
                                                                   trim_start=0, trim_end=2)
    assert probe_video(source_video).codec == "h264" and probe_video(result_video).codec == "h264"
    fbx = next(f for f in files if f.endswith(".fbx"))
    motions = import_motions(fbx)
    assert len(motions) == 1
    frames = motions[0].num_frames
    assert 55 <= frames <= 61  # 2 s at 30 fps
    assert glb is not None and glb.endswith(".glb")
    assert "Kit" in report


def test_semantic_job_reports_and_plots_before_and_after(client, small_bvh):
    *_, report, pen_plot, semantic_plot = _run(client, motion_file=small_bvh, character="Bob", semantic=True,
                                               iterations=20)
    assert "Semantic supervisor: skeletal" in report and "Pen%" in report and "Semantic distance" in report
    assert "Source semantics from: the source's joint positions" in report
    for plot in (pen_plot, semantic_plot):
        rows = plot["value"]["data"]
        assert {row[plot["value"]["columns"].index("series")] for row in rows} == {"before", "after"}


def test_own_character_file_is_used_and_a_broken_one_is_refused(client, small_bvh, tmp_path):
    from gradio_client.exceptions import AppError

    from core.character_library import load_character
    from core.io.export import export_character_motion_files
    from core.motion import Motion

    kit = load_character("Kit")
    own = tmp_path / "my_kit.fbx"
    export_character_motion_files(kit, Motion.rest(kit.skeleton, 2), [own])
    *_, report, _pen, _sem = _run(client, motion_file=small_bvh, character_file=own)
    assert "45 frames" in report and "my_kit" in report

    broken = tmp_path / "broken.fbx"
    broken.write_bytes(b"Kaydara FBX Binary  \x00" + bytes(200))
    with pytest.raises(AppError, match="broken.fbx"):
        _run(client, motion_file=small_bvh, character_file=broken)
    not_a_character = tmp_path / "notes.txt"
    not_a_character.write_text("hello")
    with pytest.raises(AppError, match=r"\.fbx"):  # Gradio refuses it against the field's file types
        _run(client, motion_file=small_bvh, character_file=not_a_character)



def test_cancelling_an_api_job_stops_it_on_the_server(client, server, small_bvh):
    """gradio_client's job.cancel() reaches the running job (not only Gradio's bookkeeping): it stops, its folder
    goes, and the next job runs at once instead of after the abandoned one."""
    import time

    from gradio_client.utils import Status

    from jobs import SAMPLE_VIDEO

    folders = set(server.job_folders())
    job = client.submit(**_args(video=SAMPLE_VIDEO, character="Bob", semantic=True, iterations=500),
                        api_name="/run")
    deadline = time.time() + 60
    while job.status().code not in (Status.PROCESSING, Status.PROGRESS):
        assert time.time() < deadline, job.status()
        time.sleep(0.2)
    time.sleep(2)  # in pose estimation; the whole job takes 30 s or more here
    t = time.perf_counter()
    job.cancel()
    *_, report, _pen, _sem = _run(client, motion_file=small_bvh)
    assert "plays 45 frames" in report
    assert time.perf_counter() - t < 20
    assert len(set(server.job_folders()) - folders) == 1  # only the second job's: the cancelled one left nothing


def test_the_fbx_target_reaches_the_file(client, small_bvh):
    """"FBX for: Blender" on the page: the downloaded FBX is in Blender's Z-up metres (its header says so)."""
    from pathlib import Path

    from ..core.io.test_export_targets import _header

    *_, files, _report, _p1, _p2 = _run(client, motion_file=small_bvh, character="Brute",
                                        fbx_target="Blender (Z up, metres)")
    fbx = Path(next(f for f in files if f.endswith(".fbx")))
    assert _header(fbx, b"UpAxis", b"I") == 2 and _header(fbx, b"UnitScaleFactor", b"D") == 100.0


def test_the_retargeter_choice_reaches_the_report(client, small_bvh):
    """Issue 21: a user who will sell the result picks a commercial-use retargeter; the report names it and the
    licence of what it made."""
    *_, report, _p1, _p2 = _run(client, motion_file=small_bvh, character="Brute",
                                retargeter="Graph network trained on CMU only (commercial use allowed)")
    assert "graph_retargeter_cmu.pt" in report and "free for any use" in report, report
