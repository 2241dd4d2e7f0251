"""The job layer directly: one run_job for every preset, its typed report, its named stages and progress, and
its refusals (all before anything is written, and before minutes of pose estimation)."""
from __future__ import annotations

import ast
import time
from pathlib import Path

import numpy as np
import pytest

from core.character_library import load_character
from core.errors import InputError
from core.io.blender import blender_available
from core.io.bvh import read_bvh, write_bvh
from core.io.export import on_rig
from core.retarget.model import DEFAULT_CHECKPOINT
from core.skeleton import canonical_skeleton
from jobs import SAMPLE_VIDEO, BeforeAfter, Stage, StageClock, preset, run_job

from ..synthetic import random_motion, tpose_offsets

ROOT = Path(__file__).resolve().parents[2]
needs_blender = pytest.mark.skipif(not blender_available(), reason="bpy (Blender as a Python module) not installed")


@pytest.fixture
def clip(tmp_path) -> Path:
    path = tmp_path / "clip.bvh"
    write_bvh(random_motion(canonical_skeleton(tpose_offsets(1.7)), frames=20, fps=30, seed=3), path)
    return path


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, fraction: float, what: str) -> None:
        self.calls.append((fraction, what))


def test_retarget_preset_reports_which_retargeter_ran(clip, tmp_path):
    copy = run_job(preset("retarget", clip, tmp_path / "copy", character="Ava", outputs=("bvh",), previews=False,
                          retargeter="copy"))
    assert copy.report.retargeter == "Copy retargeter requested"
    assert copy.report.files == {"bvh": tmp_path / "copy" / "result.bvh"} and copy.report.files["bvh"].exists()
    net = run_job(preset("retarget", clip, tmp_path / "net", character="Ava", outputs=("bvh",), previews=False))
    assert ("graph network" if DEFAULT_CHECKPOINT.exists() else "Copy retargeter") in net.report.retargeter
    assert copy.report.licence is None  # Copy learned nothing: no licence to pass on
    if DEFAULT_CHECKPOINT.exists():  # the network's checkpoint says what its results may be used for
        assert "CC BY-NC" in net.report.licence
    # The network trained on CMU data only: results a user may sell (issue 21), its own licence in the report.
    cmu = run_job(preset("retarget", clip, tmp_path / "cmu", character="Ava", outputs=("bvh",), previews=False,
                         retargeter="network-cmu"))
    assert "graph_retargeter_cmu.pt" in cmu.report.retargeter
    assert "CMU" in cmu.report.licence and "free for any use" in cmu.report.licence
    assert on_rig(read_bvh(net.report.files["bvh"]), load_character("Ava").skeleton) is not None
    with pytest.raises(InputError, match="unknown retargeter"):
        preset("retarget", clip, tmp_path / "bad", character="Ava", retargeter="magic")


def test_semantic_job_fills_the_typed_report(clip, tmp_path, monkeypatch):
    monkeypatch.delenv("SMT_VLM_PATH", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    progress = Recorder()
    result = run_job(preset("run", clip, tmp_path / "out", character="Bob", semantic=True, iterations=15,
                            outputs=("bvh",), previews=False, retargeter="copy"), progress)
    r = result.report
    assert r.supervisor.startswith("skeletal fallback: no BLIP-2 weights found")
    assert r.semantic_source.startswith("the source's joint positions") and r.semantic_measured_on is None
    assert {"pen_percent", "jdm_error", "contacts_kept", "jitter", "semantic_distance"} <= set(r.metrics)
    assert all(isinstance(m, BeforeAfter) and m.after is not None for m in r.metrics.values())
    assert set(r.per_frame) >= {"semantic_distance"}
    assert r.frames == 20 and r.fps == 30 and r.character == "Bob" and r.source == "motion file"
    assert list(r.seconds) == [Stage.READ.label, Stage.RETARGET.label, Stage.OPTIMISE.label]
    assert result.optimization is not None
    assert np.array_equal(result.final.rotations, result.optimization.motion.rotations)  # only the root was placed
    assert np.allclose(result.final.root_positions[0, [0, 2]], 0.0)
    fractions = [f for f, _ in progress.calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and progress.calls[-1][1] == "done"
    assert any(what == Stage.OPTIMISE.label for _, what in progress.calls)


@needs_blender
def test_run_preset_writes_every_file_and_a_bad_format_is_refused(clip, tmp_path):
    result = run_job(preset("run", clip, tmp_path / "out", character="Bob"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["result.bvh", "result.fbx", "result.glb",
                                                                   "result.mp4"]
    files = result.report.files
    assert files["fbx"].read_bytes().startswith(b"Kaydara FBX Binary") and files["glb"].read_bytes()[:4] == b"glTF"
    assert list(result.report.seconds)[-2:] == [Stage.RENDER.label, Stage.EXPORT.label]
    with pytest.raises(InputError, match="choose from"):
        preset("run", clip, tmp_path / "out2", character="Bob", outputs=("obj",))


@needs_blender
def test_the_fbx_is_written_while_the_preview_renders_and_every_file_says_when_it_was_ready(clip, tmp_path,
                                                                                            monkeypatch):
    """The export (Blender's worker) starts once the motion is final and runs beside the preview; the preview
    here waits for it (up to a minute), so an export that only started after the preview would fail this."""
    import core.io.export
    import core.render.preview

    exported = __import__("threading").Event()
    export, render = core.io.export.export_character_motion_files, core.render.preview.write_before_after

    def export_then_say(*args, **kwargs):
        out = export(*args, **kwargs)
        exported.set()
        return out

    def render_after_the_export(path, left, *args, progress=None, **kwargs):
        assert exported.wait(60), "the FBX/GLB export did not run beside the preview"
        return render(path, left, *args, progress=progress, **kwargs)

    monkeypatch.setattr(core.io.export, "export_character_motion_files", export_then_say)
    monkeypatch.setattr(core.render.preview, "write_before_after", render_after_the_export)
    progress = Recorder()
    t = time.perf_counter()
    result = run_job(preset("run", clip, tmp_path / "out", character="Bob", semantic=True, iterations=3), progress)
    total = time.perf_counter() - t
    r = result.report
    assert set(r.ready) == set(r.files) == {"bvh", "fbx", "glb", "preview"}
    assert all(p.exists() for p in r.files.values())
    assert 0 < r.ready["bvh"] <= r.ready["fbx"] == r.ready["glb"] < r.ready["preview"] <= total
    assert any(what.endswith("(FBX/GLB written)") for _, what in progress.calls)


@needs_blender
def test_a_character_file_blender_cannot_read_stops_the_pose_estimation_early(tmp_path):
    """A character file is imported beside the pose estimation; its failure ends the pose at its next report."""
    broken = tmp_path / "broken.glb"
    broken.write_bytes(b"glTF" + bytes(200))
    progress = Recorder()
    with pytest.raises(InputError, match="broken.glb"):
        run_job(preset("run", SAMPLE_VIDEO, tmp_path / "out", character=broken), progress)
    assert not any(what.startswith("cleaning") for _, what in progress.calls)  # the pose did not run to its end
    assert not (tmp_path / "out").exists()


@needs_blender
def test_export_preset_writes_one_file_and_skips_retargeting_on_the_same_rig(clip, tmp_path):
    first = run_job(preset("export", clip, tmp_path / "a" / "walk.bvh", character="Kit"))
    assert first.report.files == {"bvh": tmp_path / "a" / "walk.bvh"}
    assert first.report.retargeter == "Copy retargeter requested"
    again = run_job(preset("export", tmp_path / "a" / "walk.bvh", tmp_path / "b" / "walk.fbx", character="Kit"))
    assert again.report.retargeter.startswith("none needed")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["walk.fbx"]
    with pytest.raises(InputError, match="must end in .fbx, .glb or .bvh"):
        preset("export", clip, tmp_path / "c" / "walk.obj", character="Kit")


def test_pose_preset_needs_no_character_and_writes_the_persons_motion(tmp_path):
    result = run_job(preset("pose", SAMPLE_VIDEO, tmp_path / "out", trim=(0.0, 1.0), previews=False))
    assert result.report.files == {"motion": tmp_path / "out" / "motion.bvh"}
    assert result.pose is not None and result.report.source == "video"
    assert any(k.startswith("pose: ") for k in result.report.seconds)
    motion = read_bvh(tmp_path / "out" / "motion.bvh")
    assert 28 <= motion.num_frames <= 31 and result.retargeted is None
    with pytest.raises(InputError, match="a character is needed"):
        preset("pose", SAMPLE_VIDEO, tmp_path / "x", outputs=("bvh",))


def test_a_bad_character_is_refused_before_pose_and_nothing_is_written(tmp_path):
    t = time.perf_counter()
    with pytest.raises(InputError, match="unknown character 'Nobody'"):
        run_job(preset("run", SAMPLE_VIDEO, tmp_path / "out", character="Nobody"))
    assert time.perf_counter() - t < 3.0  # pose estimation of the sample clip takes ~5 s
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="smoothing must be within"):
        preset("run", SAMPLE_VIDEO, tmp_path / "out", character="Ava", smoothing=2.0)


def test_a_failing_job_leaves_nothing_behind(tmp_path):
    broken = tmp_path / "broken.bvh"
    broken.write_text("HIERARCHY\nROOT Hips\n{\n")
    (tmp_path / "out").mkdir()
    with pytest.raises(InputError, match="broken.bvh"):
        run_job(preset("run", broken, tmp_path / "out", character="Ava"))
    assert list((tmp_path / "out").iterdir()) == []


def test_stage_clock_weights_only_the_stages_a_job_runs():
    progress = Recorder()
    clock = StageClock([Stage.READ, Stage.RETARGET, Stage.EXPORT], progress)
    clock.start(Stage.READ)
    clock.start(Stage.RETARGET)
    clock.within(Stage.RETARGET)(0.5, "half way")
    clock.start(Stage.EXPORT)
    clock.done()
    total = Stage.READ.weight + Stage.RETARGET.weight + Stage.EXPORT.weight
    fractions = dict((what, f) for f, what in progress.calls)
    assert fractions["reading input"] == 0.0
    assert fractions["retargeting"] == pytest.approx(Stage.READ.weight / total)
    assert fractions["half way"] == pytest.approx((Stage.READ.weight + 0.5 * Stage.RETARGET.weight) / total)
    assert fractions["done"] == 1.0
    assert list(clock.seconds) == ["reading input", "retargeting", "exporting"]
    assert np.all(np.array(list(clock.seconds.values())) >= 0)


def test_core_imports_nothing_above_it_and_has_no_import_circle():
    """core/ never imports pose/, jobs/, webapp/ or app; and no two core modules import each other."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "core").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
                deps.add(base)
        assert not {d for d in deps if d.split(".")[0] in ("pose", "jobs", "webapp", "app")}, module
        graph[module] = {d for d in deps if d.startswith("core")}
    for a, deps in graph.items():
        for b in deps:
            assert a not in graph.get(b, set()), f"{a} and {b} import each other"


def test_a_video_job_with_a_vlm_embeds_the_persons_frames(tmp_path, monkeypatch):
    # Issue 17: the paper's video experiment. A tiny random CLIP stands in for the weights (--vlm PATH).
    from core.semantics.tiny_models import tiny_clip

    tiny_clip().save_pretrained(tmp_path / "clip")
    monkeypatch.delenv("SMT_VLM_PATH", raising=False)
    spec = preset("run", SAMPLE_VIDEO, tmp_path / "out", character="Bob", semantic=True, iterations=2,
                  trim=(0.0, 0.5), outputs=("bvh",), previews=False, retargeter="copy", vlm_path=str(tmp_path / "clip"))
    progress = Recorder()
    result = run_job(spec, progress)
    r = result.report
    fractions = [f for f, _ in progress.calls]
    assert fractions == sorted(fractions) and any(w == "embedding the source frames" for _, w in progress.calls)
    assert r.supervisor.startswith("CLIP image encoder from") and str(tmp_path / "clip") in r.supervisor
    assert r.semantic_source.startswith("video frames (square crops around the person), seen by the character "
                                        "from the video's camera + renders of the source (front, left, right)")
    assert {"scl", "fid", "semantic_distance"} <= set(r.metrics) and "itm" not in r.metrics
    assert all(np.isfinite([r.metrics[k].before, r.metrics[k].after]).all() for k in ("scl", "fid"))
    assert "no ITM" in r.semantic_measured_on
    motion_file = run_job(spec.replace(source=r.files["bvh"], out_dir=tmp_path / "ava", trim=None, character="Ava"))
    assert motion_file.report.semantic_source == "renders of the source (front, left, right)"
    # Brought back onto Bob, the result is Bob's own motion: left as it is (OptimizeConfig.keep_own_motion).
    again = run_job(spec.replace(source=r.files["bvh"], out_dir=tmp_path / "again", trim=None)).report
    assert any("Bob's own motion" in w for w in again.warnings), again.warnings


@pytest.mark.parametrize("person", [0, -1, 1.5, True, "2"])
def test_a_person_number_must_be_a_whole_number_from_one(tmp_path, person):
    with pytest.raises(InputError, match="people are numbered from 1"):
        preset("pose", tmp_path / "clip.mp4", tmp_path / "out", person=person)
    assert preset("pose", tmp_path / "clip.mp4", tmp_path / "out", person=2).person == 2


def test_a_60_fps_video_is_read_at_30_and_its_files_are_written_at_60(tmp_path):
    # A phone's 60 fps clip: the pose stage reads every second frame (pose.video.pose_step), the job's files come
    # back at the clip's own rate.
    from ..pose.conftest import ffmpeg

    clip = tmp_path / "clip60.mp4"
    ffmpeg("-i", str(SAMPLE_VIDEO), "-t", "1", "-vf", "fps=60", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip))
    result = run_job(preset("run", clip, tmp_path / "out", character="Bob", outputs=("bvh",), previews=False,
                            retargeter="copy"))
    assert result.pose is not None and result.pose.video.step == 2
    assert result.pose.fps == pytest.approx(30.0, rel=0.02) and result.pose.source_fps == pytest.approx(60.0, rel=0.02)
    assert any("read at 30 fps" in w for w in result.report.warnings)
    written = read_bvh(result.report.files["bvh"])
    assert written.fps == pytest.approx(60.0, rel=0.02) and 57 <= written.num_frames <= 61
    assert result.final.num_frames == result.pose.num_frames  # stages I and II ran at 30
