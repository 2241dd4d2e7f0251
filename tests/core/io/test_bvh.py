"""BVH reading and writing: every shared file, exact round trips, hand-made files with known answers, bad input."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from core.io.bvh import BVHError, _euler_to_quat, parse_bvh_text, read_bvh, write_bvh
from core.motion import Motion, to_canonical
from core.skeleton import CANONICAL_PARENTS, Skeleton, map_to_canonical

from ...conftest import SHARED_DATA, SHARED_DATA_MISSING
from ...synthetic import random_motion, reoriented_rig, tpose_offsets

# ----------------------------------------------------------------------------------------------------------
# Every BVH file under ../shared/data
# ----------------------------------------------------------------------------------------------------------


def _shared_bvh_files(every_bandai: int = 1) -> list:
    """Every BVH file under the shared data (every ``every_bandai``-th Bandai Namco clip, plus the four whose
    joint_Root slides), as test parameters; one skipped parameter where the data is absent."""
    files = sorted(SHARED_DATA.rglob("*.bvh")) if SHARED_DATA.is_dir() else []
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SHARED_DATA_MISSING), id="no-shared-data")]
    bandai = [f for f in files if _expected_profile(f) == "bandai"]
    keep = set(bandai[::every_bandai]) | {f for f in bandai if f.stem in SLIDING_ROOT_CLIPS}
    files = [f for f in files if f not in bandai or f in keep]
    return [pytest.param(f, id=str(f.relative_to(SHARED_DATA))) for f in files]


SLIDING_ROOT_CLIPS = {"dataset-1_dash_normal_001", "dataset-1_run_normal_001", "dataset-1_walk-back_normal_001",
                      "dataset-1_walk_normal_002"}


def _expected_profile(path: Path) -> str:
    if "bandai" in str(path):
        return "bandai"
    if path.parent.name in ("mixamo_r2et", "characters"):
        return "mixamo"
    return {"02_01": "cmu", "08_01_trimmed": "daz", "002_03_ccbase": "ccbase"}.get(path.stem, "?")


# The unit each source uses (metres per file unit): CMU cgspeed is in ASF units (inches / 0.45), the rest in cm.
EXPECTED_UNIT = {"cmu": 0.0254 / 0.45, "daz": 0.01, "ccbase": 0.01, "bandai": 0.01, "mixamo": 0.01}

# How far to_canonical's joints may be from the source's mapped joints (metres, after removing the constant
# floor shift). Measured on the shared files (max over all frames and joints):
#   mixamo 8e-9, daz 3e-15, bandai 9e-15: every joint between two canonical joints is carried exactly;
#   ccbase 3.0 mm: CC_Base_Pelvis rotates on its own below CC_Base_Hip and carries the thighs, which the
#       canonical Hips (one rotation for spine and legs) cannot follow;
#   cmu 2.6 cm (02_01): LHipJoint/RHipJoint rotate and so swing the whole leg about the hips by up to 2.6 cm;
#       the canonical topology has no joint there, so that part of the motion is lost by design.
CANONICAL_TOLERANCE = {"mixamo": 1e-6, "daz": 1e-6, "bandai": 1e-6, "ccbase": 5e-3, "cmu": 3e-2}

# Height of the head joint above the lowest foot joint in the canonical T-pose, metres (measured: Bandai 1.30,
# CMU 1.38, DAZ 1.41, CC_Base 1.63, Mixamo humans 1.33-1.53). Mousey (R2ET) is a cartoon mouse: head joint at
# 0.70 m, head top at 1.2 m. A unit misread by the smallest factor between two bands (x2.5) lands outside.
HEIGHT_RANGE = {"Mousey_Salsa_Dancing": (0.5, 1.0)}
DEFAULT_HEIGHT_RANGE = (1.2, 1.9)


def _mapped_positions(positions: np.ndarray, indices: tuple[int, ...]) -> np.ndarray:
    """``(T, 22, 3)`` canonical joints from a rig's positions; a joint the rig lacks sits midway (as in core)."""
    out = [positions[:, i] if i >= 0 else None for i in indices]
    for k, i in enumerate(indices):
        if i < 0:
            out[k] = 0.5 * (out[CANONICAL_PARENTS[k]] + out[CANONICAL_PARENTS.index(k)])
    return np.stack(out, axis=1)


@pytest.mark.parametrize("path", _shared_bvh_files())
def test_shared_file_reads(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no shared file should need a warning
        motion = read_bvh(path)
    assert motion.num_frames > 0 and motion.name == path.stem
    assert 10 <= motion.fps <= 240 and motion.fps == round(motion.fps, 2)
    assert np.isfinite(motion.rotations).all() and np.isfinite(motion.root_positions).all()
    assert np.allclose(np.linalg.norm(motion.rotations, axis=-1), 1.0)
    dots = (motion.rotations[1:] * motion.rotations[:-1]).sum(-1)
    assert (dots >= 0).all(), "quaternions must be sign-continuous over time"
    profile = _expected_profile(path)
    assert map_to_canonical(motion.skeleton).profile == profile
    raw = read_bvh(path, units=1.0)
    unit = np.linalg.norm(motion.skeleton.offsets) / np.linalg.norm(raw.skeleton.offsets)
    assert unit == pytest.approx(EXPECTED_UNIT[profile], rel=1e-9)


# to_canonical costs ~50 ms a clip whatever its length; the Bandai clips share one skeleton, so every 8th of
# them (and the sliding-root ones) stand for all 174 and keep the whole file well under 30 s.
@pytest.mark.parametrize("path", _shared_bvh_files(every_bandai=8))
def test_shared_file_canonicalises(path: Path):
    motion = read_bvh(path)
    mapping = map_to_canonical(motion.skeleton)
    profile = mapping.profile
    clip = motion.slice(0, 90) if profile == "bandai" else motion
    canonical = to_canonical(clip)
    rest = canonical.skeleton.rest_positions()
    height = rest[:, 1].max() - rest[:, 1].min()
    lo, hi = HEIGHT_RANGE.get(path.stem, DEFAULT_HEIGHT_RANGE)
    assert lo <= height <= hi, f"head-joint height {height:.3f} m: units misread?"

    diff = canonical.positions() - _mapped_positions(clip.positions(), mapping.indices)
    shift = diff.reshape(-1, 3).mean(axis=0)
    tol = CANONICAL_TOLERANCE[profile]
    assert abs(shift[0]) < tol and abs(shift[2]) < tol, "to_canonical may only shift the clip vertically"
    assert np.abs(diff - shift).max() < tol


def test_shared_files_detect_units(shared_data: Path):
    """Auto units agree with the units each source is known to use."""
    cmu = shared_data / "motion" / "cmu" / "02_01.bvh"
    mixamo = shared_data / "motion" / "mixamo_r2et" / "Ortiz_Salsa_Dancing.bvh"
    for path, unit in ((cmu, 0.0254 / 0.45), (mixamo, 0.01)):
        auto = read_bvh(path)
        explicit = read_bvh(path, units=unit)
        assert np.allclose(auto.positions(), explicit.positions())
    assert np.allclose(read_bvh(mixamo, units="cm").root_positions, read_bvh(mixamo, units=0.01).root_positions)
    assert np.allclose(read_bvh(mixamo, units="mm").root_positions * 10, read_bvh(mixamo, units="cm").root_positions)


def test_bandai_root_is_folded_into_hips(shared_data: Path):
    folder = shared_data / "motion" / "bandai_namco_1" / "data"
    for name in ("dataset-1_walk_normal_001.bvh", "dataset-1_dash_normal_001.bvh"):  # static / sliding joint_Root
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            folded = read_bvh(folder / name)
        with pytest.warns(UserWarning, match="Hips"):  # unfolded, the moving Hips can only keep a mean offset
            kept = read_bvh(folder / name, fold_root=False)
        assert folded.skeleton.names[0] == "Hips" and kept.skeleton.names[0] == "joint_Root"
        assert folded.skeleton.names == kept.skeleton.names[1:]
        assert np.ptp(folded.root_positions, axis=0).max() > 2.0  # both clips travel metres


# ----------------------------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------------------------

ROUND_TRIP_FILES = [
    "motion/cmu/02_01.bvh",  # CMU cgspeed units, zero-length end sites
    "motion/cmu/08_01_trimmed.bvh",  # DAZ names, Z-X-Y channels, end sites the mapping uses (lFoot_End)
    "motion/cmu/002_03_ccbase.bvh",  # 101 joints, moving RL_BoneRoot
    "motion/bandai_namco_1/data/dataset-1_walk_normal_001.bvh",  # folded static joint_Root
    "motion/bandai_namco_1/data/dataset-1_dash_normal_001.bvh",  # folded sliding joint_Root
    "motion/mixamo_r2et/Sporty_Granny_Salsa_Dancing.bvh",  # Mixamo, 99 joints, mixamorig: names
    "characters/Sporty_Granny_Hip_Hop_Dancing.bvh",  # Mixamo without prefix, Hips above a Pelvis
]


@pytest.mark.parametrize("rel", ROUND_TRIP_FILES)
@pytest.mark.parametrize("order", ["ZYX", "XZY"])
def test_shared_file_write_read_is_exact(shared_data: Path, tmp_path: Path, rel: str, order: str):
    source = read_bvh(shared_data / rel)
    out = tmp_path / "out.bvh"
    write_bvh(source, out, rotation_order=order)
    back = read_bvh(out)
    assert back.skeleton.names == source.skeleton.names
    assert back.skeleton.parents == source.skeleton.parents
    assert back.skeleton.end_sites == source.skeleton.end_sites
    assert back.fps == source.fps and back.num_frames == source.num_frames
    assert np.abs(back.skeleton.offsets - source.skeleton.offsets).max() < 1e-8
    assert np.abs(back.positions() - source.positions()).max() < 1e-5
    assert [p.name for p in tmp_path.iterdir()] == ["out.bvh"]  # no temporary file left behind


def _small_skeleton(end_sites: bool = True) -> Skeleton:
    """Hips with a 3-joint spine, two arms and two legs, some end sites; metres."""
    names = ["Root", "Spine", "Head", "Head_End", "LArm", "LHand", "RArm", "RHand", "RHand_End", "LLeg", "RLeg"]
    parents = [-1, 0, 1, 2, 1, 4, 1, 6, 7, 0, 0]
    offsets = [[0, 1.0, 0], [0, 0.3, 0], [0, 0.4, 0.02], [0, 0.2, 0], [0.2, 0.3, 0], [0.3, 0, 0],
               [-0.2, 0.3, 0], [-0.3, 0, 0], [-0.1, 0, 0], [0.1, -0.1, 0], [-0.1, -0.1, 0]]
    ends = [n.endswith("_End") and end_sites for n in names]
    return Skeleton(names, parents, np.array(offsets), end_sites=ends)


@pytest.mark.parametrize("order", ["XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"])
def test_synthetic_motion_round_trip(tmp_path: Path, order: str):
    sk = _small_skeleton()
    motion = random_motion(sk, frames=40, fps=24.0, scale=2.0, seed=3)  # large angles: gimbal-prone
    # End sites carry no rotation in BVH: give them identity so the motion itself survives, not just positions.
    rot = motion.rotations.copy()
    rot[:, [j for j, e in enumerate(sk.end_sites) if e]] = [1.0, 0, 0, 0]
    motion = Motion(sk, rot, motion.root_positions, motion.fps, "synthetic")
    out = tmp_path / "synthetic.bvh"
    write_bvh(motion, out, rotation_order=order)
    assert f"CHANNELS 3 {' '.join(a + 'rotation' for a in order)}" in out.read_text()
    back = read_bvh(out, units="m")
    assert back.skeleton.names == sk.names and back.fps == 24.0
    assert np.abs(back.positions() - motion.positions()).max() < 1e-7
    same = np.abs((back.rotations * motion.rotations).sum(-1))
    assert same.min() > 1 - 1e-12  # the same rotations up to sign


def test_write_bakes_rest_orientations(tmp_path: Path):
    """A joint-orient rig (non-identity rest rotations) writes world-aligned BVH with the same joint positions."""
    sk, _ = reoriented_rig(Skeleton(*_canonical_args()))
    motion = random_motion(sk, frames=12, seed=5)
    write_bvh(motion, tmp_path / "r.bvh", scale=100.0)  # centimetres in the file
    back = read_bvh(tmp_path / "r.bvh")  # auto units must find the centimetres
    assert np.allclose(back.skeleton.rest_rotations, [1.0, 0, 0, 0])
    assert np.abs(back.positions() - motion.positions()).max() < 1e-6


def _canonical_args():
    from core.skeleton import CANONICAL_JOINTS
    return CANONICAL_JOINTS, CANONICAL_PARENTS, tpose_offsets()


def test_write_orders_columns_depth_first(tmp_path: Path):
    """Topological order is not always the depth-first order BVH columns follow."""
    sk = Skeleton(["a", "b", "c", "d"], [-1, 0, 0, 1], [[0, 1, 0], [0, 0.5, 0], [0.5, 0, 0], [0, 0.3, 0]])
    motion = random_motion(sk, frames=6, seed=2, scale=1.0)
    write_bvh(motion, tmp_path / "t.bvh")
    back = read_bvh(tmp_path / "t.bvh", units="m")
    assert back.skeleton.names == ("a", "b", "d", "c")
    order = [sk.names.index(n) for n in back.skeleton.names]
    assert np.abs(back.positions() - motion.positions()[:, order]).max() < 1e-7


def test_write_is_atomic(tmp_path: Path, monkeypatch):
    out = tmp_path / "keep.bvh"
    out.write_text("old content")
    motion = random_motion(_small_skeleton(), frames=3)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_bvh(motion, out)
    assert out.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.bvh"]


def test_write_rejects_bad_arguments(tmp_path: Path):
    motion = random_motion(_small_skeleton(), frames=3)
    with pytest.raises(ValueError, match="rotation_order"):
        write_bvh(motion, tmp_path / "x.bvh", rotation_order="XXY")
    with pytest.raises(ValueError, match="scale"):
        write_bvh(motion, tmp_path / "x.bvh", scale=0.0)
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------------------------------------
# Hand-written files with known answers
# ----------------------------------------------------------------------------------------------------------

TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 0 1
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 0.5 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0333333
0 0 0 0 0 0 0 0 0
1 2 3 90 90 0 0 0 0
0 0 0 90 0 0 0 0 0
"""


def test_tiny_file_known_positions():
    m = parse_bvh_text(TINY, units="m")
    assert m.skeleton.names == ("Hips", "Chest", "Chest_End")
    assert m.skeleton.end_sites == (False, False, True)
    assert m.fps == 30.0 and m.num_frames == 3
    P = m.positions()
    assert np.allclose(P[0], [[0, 0, 0], [0, 0, 1], [0, 0.5, 1]])
    # Frame 1: R = Rz(90)·Rx(90), intrinsic as listed. Rx(90) takes (0,0,1) to (0,-1,0), Rz(90) that to (1,0,0);
    # the end site's (0,0.5,0) goes to (0,0,0.5) and stays there. (The other order, Rx·Rz, would give (0,-1,0).)
    assert np.allclose(P[1], [[1, 2, 3], [2, 2, 3], [2, 2, 3.5]])
    # Frame 2: a quarter turn about Z leaves the +Z bone alone and turns the end site's +Y into -X.
    assert np.allclose(P[2], [[0, 0, 0], [0, 0, 1], [-0.5, 0, 1]])
    assert np.allclose(m.rotations[:, 2], [1.0, 0, 0, 0])  # end sites do not rotate


def test_euler_matches_scipy_intrinsic():
    angles = np.random.default_rng(0).uniform(-360, 360, (200, 3))
    for order in ("XYZ", "ZXY", "YZX", "ZYX", "XZX", "ZX", "Y"):
        ours = _euler_to_quat(angles[:, :len(order)], order)
        ref = Rotation.from_euler(order, angles[:, :len(order)], degrees=True).as_quat(scalar_first=True)
        assert np.allclose(np.abs((ours * ref).sum(-1)), 1.0)


def _bandai_like(root_z: str = "0") -> str:
    return f"""HIERARCHY
ROOT joint_Root
{{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Hips
  {{
    OFFSET 5 90 -400
    CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
    JOINT Spine
    {{
      OFFSET 15 0 0
      CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
      End Site
      {{
        OFFSET 0 0 0
      }}
    }}
  }}
}}
MOTION
Frames: 2
Frame Time: 0.0333333
0 0 0 0 0 90 1 95 2 90 10 20 15 0 0 5 0 0
0 0 {root_z} 0 0 90 1 96 40 91 11 22 15 0 0 6 0 0
"""


@pytest.mark.parametrize("root_z", ["0", "30"])
def test_root_folding(root_z: str):
    text = _bandai_like(root_z)
    folded = parse_bvh_text(text, units="cm")
    assert folded.skeleton.names == ("Hips", "Spine", "Spine_End")
    assert np.allclose(folded.skeleton.offsets[1:], [[0.15, 0, 0], [0, 0, 0]])
    # Hips' position channels replace its OFFSET; joint_Root's Y quarter turn (and slide) is composed in:
    # Ry(90) takes (1, 95, 2) cm to (2, 95, -1) and (1, 96, 40) to (40, 96, -1).
    assert np.allclose(folded.root_positions, [[0.02, 0.95, -0.01], [0.40, 0.96, -0.01 + float(root_z) / 100]])
    # Every joint where the file's full hierarchy puts it (FK by hand, in centimetres).
    values = np.array([line.split() for line in text.strip().splitlines()[-2:]], dtype=float)
    for t in range(2):
        R_root = Rotation.from_euler("ZXY", values[t, 3:6], degrees=True)
        R_hips = R_root * Rotation.from_euler("ZXY", values[t, 9:12], degrees=True)
        hips = values[t, 0:3] + R_root.apply(values[t, 6:9])
        spine = hips + R_hips.apply(values[t, 12:15])
        assert np.allclose(folded.positions()[t] * 100, [hips, spine, spine])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = parse_bvh_text(text, units="cm", fold_root=False)
    assert kept.skeleton.names == ("joint_Root", "Hips", "Spine", "Spine_End")


def test_rotation_only_child_is_not_folded():
    text = TINY.replace("JOINT Chest", "JOINT Pelvis")
    m = parse_bvh_text(text, units="m")
    assert m.skeleton.names[0] == "Hips"


def test_non_root_position_channels_replace_offset():
    two_children = TINY.replace("CHANNELS 3 Zrotation Xrotation Yrotation",
                                "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
    two_children = two_children.replace("  }\n}\nMOTION", "  }\n  JOINT Leg\n  {\n    OFFSET 0 -1 0\n  }\n}\nMOTION")
    lines = two_children.splitlines()
    lines[-3:] = ["0 0 0 0 0 0 0 0 2 0 0 0"] * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = parse_bvh_text("\n".join(lines), units="m")
    assert m.skeleton.names == ("Hips", "Chest", "Chest_End", "Leg")
    assert np.allclose(m.skeleton.offsets[1], [0, 0, 2])  # OFFSET 0 0 1 replaced, no warning for constants
    lines[-1] = "0 0 0 0 0 0 0 0 2.3 0 0 0"
    with pytest.warns(UserWarning, match=r"Chest \(20\.0 cm\)"):
        m = parse_bvh_text("\n".join(lines), units="m")
    assert np.allclose(m.skeleton.offsets[1], [0, 0, 2.1])  # the mean


def test_single_moving_child_is_folded():
    """A root with one child whose position channels move is a container (joint_Root, Reference): folded."""
    text = TINY.replace("CHANNELS 3 Zrotation Xrotation Yrotation",
                        "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
    lines = text.splitlines()
    lines[-3:] = ["0 0 0 0 0 0 0 0 2 0 0 0", "1 0 0 0 0 0 0 0 2 0 0 0", "2 0 0 0 0 0 0 0 2.5 0 0 0"]
    m = parse_bvh_text("\n".join(lines), units="m")
    assert m.skeleton.names == ("Chest", "Chest_End")
    assert np.allclose(m.root_positions, [[0, 0, 2], [1, 0, 2], [2, 0, 2.5]])


def test_end_site_names_stay_unique():
    text = TINY.replace("JOINT Chest", "JOINT Hips_End")
    text = text.replace("End Site\n    {\n      OFFSET 0 0.5 0\n    }",
                        "End Site\n    {\n      OFFSET 0 0.5 0\n    }\n    End Site\n    {\n      OFFSET 0 0 1\n    }")
    m = parse_bvh_text(text, units="m")
    assert m.skeleton.names == ("Hips", "Hips_End", "Hips_End_End", "Hips_End_End2")


@pytest.mark.parametrize("frame_time,fps", [("0.0333333", 30.0), ("0.008333", 120.0), ("0.016667", 60.0),
                                            ("0.00833333", 120.0), ("0.0333667", 29.97), ("0.04", 25.0)])
def test_fps_rounding(frame_time: str, fps: float):
    m = parse_bvh_text(TINY.replace("0.0333333", frame_time), units="m")
    assert m.fps == fps


def test_units_auto_and_explicit():
    cm = TINY.replace("OFFSET 0 0 1", "OFFSET 0 0 100").replace("OFFSET 0 0.5 0", "OFFSET 0 50 0")
    assert np.allclose(parse_bvh_text(cm).skeleton.offsets[1], [0, 0, 1.0])  # 150 units: centimetres
    assert np.allclose(parse_bvh_text(cm, units="m").skeleton.offsets[1], [0, 0, 100.0])
    assert np.allclose(parse_bvh_text(cm, units=0.5).skeleton.offsets[1], [0, 0, 50.0])
    assert np.allclose(parse_bvh_text(TINY, units="inch").skeleton.offsets[1], [0, 0, 0.0254])
    huge = TINY.replace("OFFSET 0 0 1", "OFFSET 0 0 100000")
    with pytest.warns(UserWarning, match="cannot tell the units"):
        parse_bvh_text(huge)
    with pytest.raises(ValueError, match="unknown units"):
        parse_bvh_text(TINY, units="furlong")


def test_dialect_tolerance():
    """Tabs, CRLF line ends, braces on the JOINT line, lower-case channels, trailing blank lines."""
    text = TINY.replace("  ", "\t").replace("JOINT Chest\n\t{", "JOINT Chest {").replace("Zrotation", "zROTATION")
    m = parse_bvh_text(text.replace("\n", "\r\n") + "\r\n\r\n", units="m")
    assert np.allclose(m.positions(), parse_bvh_text(TINY, units="m").positions())


@pytest.mark.parametrize("extra", ["1 2 3 4 5 6 7 8 9\n", "garbage 1 2\n"])
def test_lines_after_the_declared_frames_are_ignored(extra: str):
    with pytest.warns(UserWarning, match="ignored"):
        m = parse_bvh_text(TINY + extra, units="m")
    assert m.num_frames == 3
    assert np.allclose(m.positions(), parse_bvh_text(TINY, units="m").positions())


def test_read_file_names_the_file(tmp_path: Path):
    bad = tmp_path / "broken_take.bvh"
    bad.write_text(TINY.replace("90 90 0 0 0 0", "90 90 0 0 0"))
    with pytest.raises(BVHError, match=r"^broken_take\.bvh, line 20: frame 2 has 8 values"):
        read_bvh(bad)
    with pytest.raises(BVHError, match="no such file: missing.bvh"):
        read_bvh(tmp_path / "missing.bvh")
    (tmp_path / "binary.bvh").write_bytes(b"\x00\x01\x02HIERARCHY")
    with pytest.raises(BVHError, match="binary"):
        read_bvh(tmp_path / "binary.bvh")


# ----------------------------------------------------------------------------------------------------------
# Bad input: one BVHError with a specific one-line message each
# ----------------------------------------------------------------------------------------------------------

BAD_INPUTS = {
    "empty": ("", r"empty file"),
    "garbage": ("hello, this is not a motion file\n1 2 3\n", r"not a BVH file: expected 'HIERARCHY'"),
    "truncated in hierarchy": (TINY[:TINY.index("End Site")], r"file ends inside the HIERARCHY section"),
    "truncated after hierarchy": (TINY[:TINY.index("MOTION")], r"no MOTION section"),
    "truncated before frame time": (TINY[:TINY.index("Frame Time")], r"line 18: file ends before the 'Frame Time:'"),
    "truncated mid frame": (TINY[:-12], r"line 21: frame 3 has 4 values, the hierarchy declares 9 channels \(file truncated\?\)"),
    "truncated after a frame": (TINY[:TINY.index("1 2 3 90")], r"file ends after 1 of 3 frames"),
    "zero frames": (TINY.replace("Frames: 3", "Frames: 0"), r"line 17: 'Frames: 0'"),
    "bad frame count": (TINY.replace("Frames: 3", "Frames: three"), r"line 17: the frame count is not a whole number"),
    "no frames line": (TINY.replace("Frames: 3", "Fremes: 3"), r"line 17: expected 'Frames: <count>'"),
    "zero frame time": (TINY.replace("0.0333333", "0"), r"line 18: the frame time must be a positive"),
    "too many values": (TINY.replace("1 2 3 90 90 0 0 0 0", "1 2 3 90 90 0 0 0 0 7"),
                        r"line 20: frame 2 has 10 values, the hierarchy declares 9 channels"),
    "non-numeric value": (TINY.replace("1 2 3 90", "1 2 abc 90"), r"line 20: value 3 of frame 2 is not a number"),
    "nan value": (TINY.replace("1 2 3 90", "1 2 nan 90"), r"line 20: value 3 of frame 2 is not finite"),
    "unknown channel": (TINY.replace("CHANNELS 3 Zrotation", "CHANNELS 3 Zscale"),
                        r"line 9: unknown channel name \(expected"),
    "bad channel count": (TINY.replace("CHANNELS 3", "CHANNELS x"), r"line 9: expected a channel count"),
    "bad offset": (TINY.replace("OFFSET 0 0 1", "OFFSET 0 zero 1"), r"line 8: expected a number for OFFSET"),
    "unbalanced braces": (TINY.replace("}\nMOTION", "MOTION"), r"MOTION section starts before the joint of line 2 is closed"),
    "two roots": (TINY.replace("}\nMOTION", "}\nROOT Other\n{\n}\nMOTION"), r"several ROOT hierarchies"),
    "duplicate name": (TINY.replace("JOINT Chest", "JOINT Hips"), r"line 6: this joint's name is used twice"),
    "unknown keyword": (TINY.replace("OFFSET 0 0 1", "OFFSET 0 0 1\n    SCALE 2"), r"line 9: unexpected word inside the joint of line 6"),
    "no root": (TINY.replace("ROOT Hips", "JOINT Hips"), r"line 2: expected 'ROOT' after HIERARCHY"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_bvh_error(name: str):
    text, pattern = BAD_INPUTS[name]
    with pytest.raises(BVHError, match=pattern) as info:
        parse_bvh_text(text, source="take.bvh")
    message = str(info.value)
    assert "\n" not in message and message.startswith("take.bvh")
    assert isinstance(info.value, ValueError)


def test_a_bvh_of_a_builtin_character_is_found_on_its_rig_again(tmp_path):
    """A BVH lists joints depth first, so a built-in character's fingers come back right after their hand, not after
    the 22 body joints: :func:`core.io.export.on_rig` puts them back in the character's order (and tells another
    rig apart), so re-exporting a result needs no retargeting."""
    from core.character_library import load_character
    from core.io.export import on_rig

    from ...synthetic import random_motion

    ava, bob = load_character("Ava"), load_character("Bob")
    motion = random_motion(ava.skeleton, frames=5, seed=2)
    write_bvh(motion, tmp_path / "ava.bvh")
    back = read_bvh(tmp_path / "ava.bvh", units="m")
    assert back.skeleton.names != ava.skeleton.names and set(back.skeleton.names) == set(ava.skeleton.names)
    again = on_rig(back, ava.skeleton)
    assert again is not None and again.skeleton is ava.skeleton
    assert np.abs(again.positions() - motion.positions()).max() < 1e-6
    assert on_rig(back, bob.skeleton) is None  # same joint names, other proportions
