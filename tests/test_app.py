"""The CLI end to end, as a user runs it (subprocess), on a motion the test makes itself."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.character_library import builtin_character_names, load_character
from core.io.bvh import read_bvh, write_bvh
from core.io.export import on_rig
from core.render.video import probe_video
from core.skeleton import CANONICAL_JOINTS, Skeleton

from .synthetic import random_motion, tpose_offsets

ROOT = Path(__file__).resolve().parent.parent


def run_app(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "app.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory) -> Path:
    """A 2-second clip on a Mixamo-named rig in centimetres, like a user's download."""
    names = tuple("mixamorig:" + n for n in CANONICAL_JOINTS)
    from core.skeleton import CANONICAL_PARENTS
    sk = Skeleton(names, CANONICAL_PARENTS, tpose_offsets(1.75))
    motion = random_motion(sk, frames=60, fps=30, seed=11)
    path = tmp_path_factory.mktemp("clip") / "dance.bvh"
    write_bvh(motion, path, scale=100.0)
    return path


def test_characters_lists_builtins():
    out = run_app("characters")
    assert out.returncode == 0, out.stderr
    names = builtin_character_names()
    assert len(names) >= 4
    for name in names:
        line = next(l for l in out.stdout.splitlines() if l.startswith(name))
        c = load_character(name)
        assert f"{c.height:.2f}m" in line and " 52 " in line  # joints: the 22 canonical and 30 finger joints


def test_retarget_writes_bvh_and_h264(tmp_path, small_clip):
    name = builtin_character_names()[0]
    out_dir = tmp_path / "out"
    res = run_app("retarget", "--motion", str(small_clip), "--character", name, "--out", str(out_dir), "--size", "256")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["result.bvh", "result.fbx", "result.glb", "result.mp4"]
    result = read_bvh(out_dir / "result.bvh")
    assert result.num_frames == 60 and result.fps == 30
    assert on_rig(result, load_character(name).skeleton) is not None  # the character's rig (fingers included)
    heights = result.positions()[..., 1]
    assert 0.3 * load_character(name).height < heights.max() < 1.2 * load_character(name).height
    info = probe_video(out_dir / "result.mp4")
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.width == 512 and info.height == 256 and info.frames == 60


@pytest.mark.parametrize("case", ["truncated", "zero_frames", "garbage", "unknown_character", "unwritable_out",
                                  "missing_file", "unmappable"])
def test_bad_input_gets_one_line_error(tmp_path, small_clip, case):
    motion, character, out_dir = small_clip, builtin_character_names()[0], tmp_path / "out"
    text = small_clip.read_text()
    if case == "truncated":
        motion = tmp_path / "t.bvh"
        motion.write_text(text[: len(text) // 2])
    elif case == "zero_frames":
        motion = tmp_path / "z.bvh"
        head = text[: text.index("Frames:")]
        motion.write_text(head + "Frames: 0\nFrame Time: 0.0333333\n")
    elif case == "garbage":
        motion = tmp_path / "g.bvh"
        motion.write_bytes(os.urandom(2000))
    elif case == "unknown_character":
        character = "NoSuchHero"
    elif case == "unwritable_out":
        blocker = tmp_path / "file"
        blocker.write_text("x")
        out_dir = blocker / "out"
    elif case == "missing_file":
        motion = tmp_path / "nope.bvh"
    elif case == "unmappable":
        motion = tmp_path / "u.bvh"
        motion.write_text(text.replace("mixamorig:LeftHand", "mixamorig:Flipper"))
    res = run_app("retarget", "--motion", str(motion), "--character", character, "--out", str(out_dir))
    assert res.returncode == 2
    lines = [l for l in res.stderr.splitlines() if not l.startswith(("[", "warning: "))]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    if case == "unknown_character":
        assert all(n in lines[0] for n in builtin_character_names())
    if case == "unmappable":
        assert "LeftHand" in lines[0]
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_debug_is_accepted_after_the_command_too(tmp_path):
    missing = tmp_path / "nope.bvh"
    for argv in (("--debug", "retarget", "--motion", str(missing)), ("retarget", "--motion", str(missing), "--debug")):
        res = run_app(*argv, "--character", "Ava", "--out", str(tmp_path / "out"))
        assert res.returncode != 0 and "Traceback" in res.stderr and "nope.bvh" in res.stderr, res.stderr
    res = run_app("retarget", "--motion", str(missing), "--character", "Ava", "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_quiet_prints_no_mediapipe_log_lines_but_still_errors(tmp_path):
    from jobs import SAMPLE_VIDEO

    res = run_app("pose", str(SAMPLE_VIDEO), "--out", str(tmp_path / "out"), "--end", "1", "--no-video", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout
    for noise in ("W0000", "I0000", "TensorFlow Lite", "absl::InitializeLog", "inference_feedback_manager"):
        assert noise not in res.stderr, res.stderr
    res = run_app("pose", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "out2"), "--quiet")
    assert res.returncode == 2 and res.stderr.strip() == "error: no such file: missing.mp4"


def test_semantic_optimisation_is_on_by_default_as_on_the_page(tmp_path, small_clip):
    common = ("retarget", "--motion", str(small_clip), "--character", "Bob", "--no-video", "--formats",
              "--iterations", "5", "--quiet")
    on = run_app(*common, "--out", str(tmp_path / "on"))
    off = run_app(*common, "--out", str(tmp_path / "off"), "--no-semantic")
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    assert "semantic supervisor:" in on.stdout and "semantic supervisor:" not in off.stdout


def test_a_bad_job_history_budget_is_refused_before_the_server_starts(tmp_path):
    for argv, env in ((("--history-mb", "-5"), {}), ((), {"SMT_HISTORY_MB": "lots"})):
        res = subprocess.run([sys.executable, str(ROOT / "app.py"), *argv], cwd=ROOT, capture_output=True, text=True,
                             timeout=120, env=dict(os.environ, SMT_HOME=str(tmp_path), **env))
        assert res.returncode == 2 and res.stderr.startswith("error: ") and "SMT_HISTORY_MB" in res.stderr, res.stderr
        assert "Serving" not in res.stdout


def test_people_lists_those_in_view_and_pose_follows_the_one_asked_for(tmp_path):
    """`app.py people` numbers the people (and draws them); `pose --person 1` follows the small one on the left
    and prints the list; a number beyond it is a one-line error."""
    import imageio.v3 as iio

    from jobs import SAMPLE_VIDEO
    from tests.synthetic import two_people_video

    clip = two_people_video(SAMPLE_VIDEO, tmp_path / "two.mp4", frames=20)
    res = run_app("people", str(clip), "--picture", str(tmp_path / "people.png"), "--quiet")
    assert res.returncode == 0, res.stderr
    assert "2 people in frame 0 (0.00 s), numbered left to right:" in res.stdout
    assert "person 1: left," in res.stdout and "person 2: right," in res.stdout
    assert "(followed unless you pick another)" in res.stdout.splitlines()[2]
    assert iio.imread(tmp_path / "people.png").shape == (405, 720, 3)
    res = run_app("pose", str(clip), "--out", str(tmp_path / "out"), "--no-video", "--person", "1", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "  1: box x" in res.stdout and "<- followed" in res.stdout.split("  1: box x")[1].splitlines()[0]
    assert "person 1 (numbered left to right), as asked, was followed" in res.stdout
    res = run_app("pose", str(clip), "--out", str(tmp_path / "out3"), "--no-video", "--person", "3", "--quiet")
    assert res.returncode == 2 and "person 3 was asked for, but 2 people were found" in res.stderr
    assert not (tmp_path / "out3").exists()


def test_batch_follows_the_person_asked_for_in_every_video(tmp_path):
    """`app.py batch --person N` hands N to each video's job, as `run --person N` does: a number beyond the people
    found fails that clip with the job's own message (without the option the clip would simply run)."""
    from jobs import SAMPLE_VIDEO
    from tests.synthetic import two_people_video

    (tmp_path / "takes").mkdir()
    clip = two_people_video(SAMPLE_VIDEO, tmp_path / "takes" / "two.mp4", frames=20)
    res = run_app("batch", str(clip.parent), "--character", "Ava", "--out", str(tmp_path / "out"), "--no-semantic",
                  "--workers", "1", "--person", "3", "--quiet")
    assert res.returncode == 1, res.stderr
    assert "0 of 1 clips done" in res.stdout
    assert "failed: two.mp4:" in res.stdout and "person 3 was asked for, but 2 people were found" in res.stdout
