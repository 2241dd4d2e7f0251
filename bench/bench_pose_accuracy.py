"""Pose accuracy against ground truth: known mocap rendered on built-in characters, through the whole pose stage.

Each case plays a clip of ../shared/data (Bandai Namco Motiondataset-1, CMU) on a built-in character of some
build (Copy retarget, feet on the floor), renders it with the repo's preview renderer at 1280x720, 30 fps, from
one camera (eye height, high, low, 30° or 60° to the side of the person's first facing, or a slow pan that
follows them), with a phone's field of view (the pose stage's default, 65° across), and runs
``pose.pipeline.video_to_motion`` on the H.264 file. Cheap realism: a generated wall (colour field, door and
frames) replaces the sky, the floor is tinted and textured, the clothes get random colours, and sensor noise
(σ 3 grey levels) is added. Still easier than real footage: clean CG bodies with no loose clothing, hair or
occlusion, even light, no motion blur, no lens distortion, the field of view the stage assumes.

Metrics (core.pose_accuracy), on the canonical 22 joints, the prediction scaled by the ratio of the skeletons'
heights (a video carries no absolute size): MPJPE (root-relative, in each frame's camera: the truth's render
camera, the pose stage's assumed one turned as it measured the camera turn) and PA-MPJPE (per-frame
Procrustes), mm; root path error (displacement from the first frame, in the first frame's camera), mm; head
pitch, neck, knee flexion, knee valgus and elbow angle errors (mean |difference|, degrees; head pitch is the
head's forward axis against each world's own up, so a tilted floor shows in it; the rigs' T-poses bend knees
5-11° and the neck 9-12° where the fitted skeleton's are straight: measuring from each rest pose instead made
the knee and neck errors larger, 13 -> 15° and 16 -> 22°, so angles are compared as they are); wrists
wrongly crossed (% of frames where a predicted wrist is over 2 cm past the body's midline while the truth's is
on its own side: issue 19's hands crossed in front of the groin; core.pose_accuracy.wrongly_crossed); foot skate
(horizontal speed of the predicted foot joints where the truth's feet are planted: within 2 cm of their
lowest height within half a second, slower than 20 cm/s; cm/s; the truth's own in the
note: frame to frame, so a foot trembling in place counts; the truth itself scores 4 cm/s mean on the tuning
cases, 7.4 on the walks), foot skate beyond the truth's own (the same frames, each foot joint's speed above the
truth's: 0 for the truth, the number the 2 cm/s target applies to) and foot slide (the same joints' travel from the first
to the last frame of each contact over its duration: the slide without the tremble); feet
height where planted (each foot's sole above the floor, prediction minus truth, cm: positive = hovering; a sole
is read from the ankle and toe joints, each less its own height standing flat, core.pose_accuracy.sole_heights); floor tilt (angle between the
predicted and the true up axis in the camera, degrees); lag (the time shift that best matches prediction to
truth, ms; a filter that trades jitter for lag shows here); jitter (m/s²) predicted vs true.

Held out of any tuning: the cases marked "held out" (run_old with the panning camera, walk_happy: the Bandai
styles "old" and "happy", which the retargeter holds back too): fixes are tuned on the other six and only
checked on these. One slip, said here: a first version of the leg untangling (pose.clean.untangle_sides, with a
thighs-crossing cue) was seen to swap walk_happy's legs wrongly (slide 10 -> 138 cm/s); it was then reworked on
the tuning motions filmed from more cameras (walk, punch and the CMU walk from 60° and panning, the walk from
low: BENCH_POSE_ACCURACY=full cases), not on the held-out clips, which were only rerun at the end. The second
round (floor levelled by the hips' path, each part of a planted foot held, contact gaps bridged, swinging knees
kept, knees over the toes, no leg swaps at the clip's ends) was tuned the same way, on MediaPipe's output for
those clips kept and replayed, and the held-out cases were run once, at the end. So was the third (legs keep
their seen knee bend, planted knees bend at most 20° to reach their spot, wrists seen inside the trunk past its
midline go back to their own side). The fourth round (the head's pitch read from the face smoothed over 0.17 s and 3/4 of it
kept, a still foot may seem to move 15 cm across a short contact gap) was tuned the same way; one slip, said
here: the sweeps of the head's share printed the held-out means beside the tuning ones (the tuning cases alone
favoured keeping less; 3/4 was chosen so a real look down, the shared basketball clip's, mostly stays). So was the
fifth (a planted foot out of the leg's reach turns about its toe, contact gaps bridged where the foot seems to move
up to 20 cm); the replay printed the held-out means beside the tuning ones, and none of its choices was made on
them. So was the sixth (each half of the body MediaPipe read as seen from behind for a few frames turned back by the
trunk's facing continuity, a running foot's contact begun at its landing frame), tuned on the tuning cases, more
cameras of their motions and four renders of runs in styles other than the held-out one (run_tired from the eye
and panning cameras, run_feminine from 60°, run_not-confident from 30°); the held-out cases were run once, at the
end. So was the seventh (a gap of two frames in a foot's contacts bridged wherever its spots seem to be, the clip's
ends not taken as planted where the foot is 25 cm above the other), tuned on the tuning cases, more cameras of their
motions (the panning one of each too) and fifteen run renders: those four and eleven from the panning camera in
other styles than the held-out one (run_normal / Ava, run_not-confident / Kit, run_sad / Brute, run_giant / Slim,
run_childish / Ava, run_proud / Kit; run_active, run_angry, run_chimpira, run_musical and run_masculinity on Slim);
the held-out cases were run once, at the end. The joints are where each skeleton puts them (a character's rig vs.
the fitted skeleton), so a perfect estimator still scores a few cm of MPJPE. The feet height where planted once
compared the foot joints' own heights, and there a perfect estimator scored a few cm below the truth:
the rigs' ToeBase (at the ball of the foot) stands 2.6-6.2 cm above the floor in the tuning clips' contacts, the
fitted skeleton's (MediaPipe's toe tip) 0-4 cm, so a perfect estimator would score about -3 cm on the toes (after
the fifth round the pose stage's toe joints stand 0.3 cm above its floor in the truth's contacts of the tuning
cases, the rigs' 4.1 cm: -3.8 on the toes); and the rigs' ankle joints stand 12-14 cm above the floor there,
MediaPipe's ankle (the fitted Foot) 6.5-7 cm on a standing foot (the bow, the call: -7 and -5 cm on the ankles).
Each joint less its height in its own rest pose standing flat (the rig's above its mesh's lowest point), the two
compare soles (cached replay of the eight cases: mean |error| 3.41 -> 0.85 cm on the tuning cases, 2.64 -> 0.68
held out; the walk from the eye's height +0.8 cm, the CMU walk -1.7).

    python -m bench.run pose_accuracy            # 8 cases x 3 s (about 2-3 min on 2 cores)
    BENCH_POSE_ACCURACY=full python -m bench.run pose_accuracy   # every motion from every camera
    BENCH_POSE_VIDEOS=DIR python -m bench.run pose_accuracy       # keep the renders in DIR, reuse them next time
                                                                   # (for before/after runs of a pose change)
"""
from __future__ import annotations

import dataclasses
import functools
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import SHARED_DATA, Row

SIZE = (1280, 720)
FPS = 30.0
SECONDS = 3.0
BANDAI = SHARED_DATA / "motion" / "bandai_namco_1" / "data"
CMU = SHARED_DATA / "motion" / "cmu"

# camera kind -> (azimuth from the person's first facing, degrees; elevation: degrees looking down)
CAMERAS = {"eye": (0.0, 6.0), "high": (0.0, 30.0), "low": (0.0, -4.0), "side30": (30.0, 6.0),
           "side60": (60.0, 6.0), "pan": (15.0, 6.0)}


@dataclass(frozen=True)
class Case:
    """One rendered clip: ``motion`` (a BVH file) from ``start`` seconds, on ``character``, seen by ``camera``."""

    motion: Path
    start: float
    character: str
    camera: str
    held_out: bool = False

    @property
    def label(self) -> str:
        stem = self.motion.stem.replace("dataset-1_", "").replace("_001", "")
        return f"{stem} / {self.character} / {self.camera}" + (" (held out)" if self.held_out else "")


def cases(full: bool = False) -> list[Case]:
    tuning = [(BANDAI / "dataset-1_walk_normal_001.bvh", 1.0), (BANDAI / "dataset-1_bow_normal_001.bvh", 0.5),
              (BANDAI / "dataset-1_punch_normal_001.bvh", 1.0), (BANDAI / "dataset-1_dance-short_normal_001.bvh", 2.0),
              (BANDAI / "dataset-1_call_normal_001.bvh", 0.5), (CMU / "02_01.bvh", 0.0)]
    held = [(BANDAI / "dataset-1_run_old_001.bvh", 0.5), (BANDAI / "dataset-1_walk_happy_001.bvh", 1.0)]
    if full:
        chars = ("Ava", "Brute", "Slim", "Kit")
        return [Case(m, s, chars[i % len(chars)], cam, held_out=k >= len(tuning))
                for k, (m, s) in enumerate(tuning + held) for i, cam in enumerate(CAMERAS)]
    plan = [("Ava", "eye"), ("Brute", "high"), ("Slim", "side30"), ("Kit", "low"), ("Ava", "side60"),
            ("Brute", "eye"), ("Slim", "pan"), ("Kit", "side60")]
    return [Case(m, s, ch, cam, held_out=k >= len(tuning))
            for k, ((m, s), (ch, cam)) in enumerate(zip(tuning + held, plan))]


# ----------------------------------------------------------------------------------------------------------
# The scene: truth motion, cameras, frames
# ----------------------------------------------------------------------------------------------------------

def truth_motion(case: Case, character):
    """The case's motion on the character (Copy retarget, feet on the floor), ``SECONDS`` long at ``FPS``."""
    from core.io.bvh import read_bvh
    from core.motion import to_canonical
    from core.retarget.copy import copy_retarget

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unit guesses of the BVH reader
        source = to_canonical(read_bvh(case.motion)).resample(FPS)
    first = int(round(case.start * FPS))
    source = source.slice(first, first + int(SECONDS * FPS))
    return copy_retarget(source, character.skeleton)


def _facing(motion) -> float:
    """Azimuth (degrees from +Z towards +X) the person faces in the first frame."""
    forward = motion.fk().rotations[0, 0].numpy() @ np.array([0.0, 0.0, 1.0])
    return math.degrees(math.atan2(forward[0], forward[2]))


def cameras(case: Case, character, motion) -> list:
    """One :class:`~core.render.preview.Camera` per frame (all the same but for the panning camera)."""
    from core.render.preview import Camera, clip_framing_points, frame_camera

    from pose.root import DEFAULT_FOV

    aspect = SIZE[0] / SIZE[1]
    fov_y = math.degrees(2 * math.atan(math.tan(math.radians(DEFAULT_FOV) / 2) / aspect))
    azimuth, elevation = CAMERAS[case.camera]
    view = _facing(motion) + azimuth
    points, pad = clip_framing_points(character, motion)
    T = motion.num_frames
    if case.camera != "pan":
        return [frame_camera(points, aspect, view, fov_y, elevation, pad=pad)] * T
    # A camera at eye height beside the person's path (70° from their direction of travel, on the side they
    # come towards), 4.5 m from its middle, turning on the spot to follow their hips (smoothed): a slow pan.
    hips = motion.positions()[:, 0]
    travel = hips[-1] - hips[0]
    if math.hypot(travel[0], travel[2]) > 0.5:
        view = math.degrees(math.atan2(travel[0], travel[2])) + 70.0
    centre = hips.mean(axis=0)
    a = math.radians(view)
    eye = np.array([centre[0] + 4.5 * math.sin(a), 1.5, centre[2] + 4.5 * math.cos(a)])
    kernel = np.hanning(15) / np.hanning(15).sum()
    follow = np.stack([np.convolve(np.pad(hips[:, k], 7, mode="edge"), kernel, "valid") for k in range(3)], 1)
    follow[:, 1] = centre[1]
    return [Camera(eye=eye, target=follow[t], fov_y=fov_y, aspect=aspect, near=0.05, far=100.0, extent=3.0)
            for t in range(T)]


def camera_coords(camera, points: np.ndarray) -> np.ndarray:
    """``(..., 3)`` world points in a render camera's frame with the pose stage's axes (x right, y down, z ahead)."""
    r, u, b = camera.basis()
    rel = np.asarray(points, float) - np.asarray(camera.eye, float)
    return np.stack([rel @ r, -(rel @ u), -(rel @ b)], axis=-1)


def _wall(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """A generated wall: a smooth colour field, a door and a few framed rectangles, fine texture."""
    import cv2

    base = rng.uniform(0.35, 0.85, 3)
    field = cv2.resize(rng.uniform(-0.12, 0.12, (5, 8, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img = np.clip(base + field, 0, 1)
    for k in range(int(rng.integers(2, 5))):
        rw, rh = int(rng.uniform(0.06, 0.2) * w), int(rng.uniform(0.15, 0.6) * h)
        x, y = int(rng.uniform(0, w - rw)), int(rng.uniform(0, max(h - rh, 1)))
        if k == 0:  # a door down to the floor
            rh = int(0.75 * h)
            y = h - rh
        colour = rng.uniform(0.1, 0.95, 3)
        img[y:y + rh, x:x + rw] = colour
        cv2.rectangle(img, (x, y), (x + rw, y + rh), tuple(float(c) for c in colour * 0.5), 4)
    img *= 1 + rng.normal(0, 0.03, (h, w, 1))
    return np.clip(img * 255, 0, 255).astype(np.float32)


def _dressed(character, rng: np.random.Generator):
    """The character with random shirt and trouser colours (its skin and head as they were)."""
    from core.character import PART_NAMES

    colors = np.array(character.colors, dtype=np.float64)
    shade = colors.mean(axis=1, keepdims=True) / max(colors.mean(), 1e-6)
    for part in ("torso", "leg"):
        mask = character.parts == PART_NAMES.index(part)
        colors[mask] = np.clip(rng.uniform(0.1, 0.9, 3) * (0.85 + 0.15 * shade[mask]), 0, 1)
    return dataclasses.replace(character, colors=colors)


@functools.lru_cache(maxsize=1)
def _renderer():
    """The bench's renderer: no multisampling (2.5x faster on the CPU; H.264 and the added noise hide it)."""
    from core.render.preview import PreviewRenderer

    return PreviewRenderer(samples=0)


def render_case(case: Case, character, motion, cams: list, path: Path, seed: int = 0) -> None:
    """Render the clip with the realism described in the module docstring and write it as H.264.

    The scenery (wall, tinted floor) is made once per camera; per frame only the box around the person is
    composed: their pixels (where the frame differs from the scene rendered without them, shadows aside) over
    the scenery, their shadow kept on the tinted floor.
    """
    from core.render.preview import render_motion_clip
    from core.render.video import write_mp4

    rng = np.random.default_rng(seed)
    dressed = _dressed(character, rng)
    renderer = _renderer()
    W, H = SIZE
    wall = _wall(rng, W, H)
    tint = rng.uniform(0.6, 1.15, 3).astype(np.float32)
    floor_tex = (1 + rng.normal(0, 0.04, (H, W, 1))).astype(np.float32)
    noise = [rng.normal(0, 3.0, (H, W, 3)).astype(np.int16) for _ in range(3)]  # sensor noise, σ 3 levels
    rows = np.arange(H, dtype=np.float32)[:, None, None]
    focal = 0.5 * H / math.tan(math.radians(cams[0].fov_y) / 2)
    joints = motion.positions()
    scenes: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # id(camera) -> (empty, below, scenery)

    def scene(cam):
        if id(cam) not in scenes:
            behind = np.asarray(cam.eye) - 2.0 * cam.forward  # every vertex behind the camera: an empty scene
            verts = np.tile(behind, (1, len(character.rest_vertices), 1))
            empty = next(iter(renderer.render_mesh([verts], character.faces, None, cam, SIZE, scale=1.7)))
            far = np.asarray(cam.eye) + 1000.0 * np.array([cam.forward[0], 0.0, cam.forward[2]])
            far[1] = 0.0
            below = rows >= float(cam.project(far, SIZE)[0][1])  # under the horizon: floor
            # A far wall slides by the camera's turn: focal length x tan(turn) pixels.
            turn = math.atan2(*cam.forward[[0, 2]]) - math.atan2(*cams[0].forward[[0, 2]])
            backdrop = np.roll(wall, int(round(focal * math.tan(turn))) % W, axis=1)
            scenery = np.where(below, empty * tint * floor_tex, backdrop)
            scenes.clear()  # one camera at a time (a pan makes one per frame)
            scenes[id(cam)] = (empty.astype(np.float32), below, np.clip(scenery, 0, 255).astype(np.uint8))
        return scenes[id(cam)]

    if len(set(map(id, cams))) == 1:
        frames = render_motion_clip(dressed, motion, SIZE, camera=cams[0], renderer=renderer)
    else:
        frames = (next(iter(render_motion_clip(dressed, motion.slice(t, t + 1), SIZE, camera=cams[t],
                                               renderer=renderer))) for t in range(motion.num_frames))

    def composed():
        for t, frame in enumerate(frames):
            cam = cams[t]
            empty, below, scenery = scene(cam)
            out = scenery.copy()
            px = cam.project(joints[t], SIZE)[0]
            lo, hi = px.min(axis=0), px.max(axis=0)
            pad = 0.35 * (hi[1] - lo[1]) + 20  # the mesh around the joints, the head above them, the shadow
            x0, y0 = (int(max(v, 0)) for v in lo - pad)
            x1, y1 = int(min(hi[0] + pad, W)), int(min(hi[1] + pad, H))
            if x1 > x0 and y1 > y0:
                f = frame[y0:y1, x0:x1].astype(np.float32)
                bg = empty[y0:y1, x0:x1]
                k = f.sum(-1) / np.maximum(bg.sum(-1), 1.0)
                shadow = np.abs(f - k[..., None] * bg).max(axis=-1) < 6  # a darker copy of the floor
                person = ((np.abs(f - bg).max(axis=-1) > 8) & ~shadow)[..., None]
                floor = f * tint * floor_tex[y0:y1, x0:x1]
                mix = np.where(person, f, np.where(below[y0:y1], floor, out[y0:y1, x0:x1]))
                out[y0:y1, x0:x1] = np.clip(mix, 0, 255).astype(np.uint8)
            yield np.clip(out.astype(np.int16) + noise[t % len(noise)], 0, 255).astype(np.uint8)

    write_mp4(composed(), path, fps=FPS)


# ----------------------------------------------------------------------------------------------------------
# Comparing with the truth
# ----------------------------------------------------------------------------------------------------------

def _standing_height(skeleton) -> float:
    from core.skeleton import CANONICAL_JOINTS

    rest = skeleton.rest_positions()
    feet = [CANONICAL_JOINTS.index(n) for n in ("LeftToeBase", "RightToeBase", "LeftFoot", "RightFoot")]
    return float(rest[CANONICAL_JOINTS.index("Head"), 1] - rest[feet, 1].min())


from core.skeleton import CANONICAL_JOINTS  # noqa: E402


def compare(truth, cams: list, pose, truth_floor: float | None = None) -> dict[str, float]:
    """The metrics of the module docstring for one case (``pose``: a PoseResult of the rendered clip;
    ``truth_floor``: the character's lowest rest vertex, where its rest pose meets the ground)."""
    from core.metrics import foot_skate, jitter
    from core.motion import FOOT_JOINTS
    from core.pose_accuracy import (added_skate, best_lag, contact_slide, joint_angles, mpjpe, pa_mpjpe, planted,
                                    sole_heights, wrongly_crossed)
    from pose.pipeline import camera_turns

    pred = pose.motion
    T = min(truth.num_frames, pred.num_frames)
    tk, pk = truth.fk(), pred.fk()
    J = len(CANONICAL_JOINTS)  # the body; the finger joints follow it (the characters', and the pose stage's with hands)
    P_t, R_t = tk.positions.numpy()[:T, :J], tk.rotations.numpy()[:T, :J]
    P_p, R_p = pk.positions.numpy()[:T, :J], pk.rotations.numpy()[:T, :J]
    s = _standing_height(truth.skeleton) / _standing_height(pred.skeleton)
    cam_t = np.stack([camera_coords(cams[t], P_t[t]) for t in range(T)])
    turns, _ = camera_turns(pose.camera_motion, T)  # the pose stage's camera, turned as it measured it
    cam_p = np.einsum("tji,tnj->tni", turns, pose.camera.to_camera(P_p))
    rel_t, rel_p = cam_t - cam_t[:, :1], s * (cam_p - cam_p[:, :1])
    root_t = camera_coords(cams[0], P_t[:, 0])
    root_p = s * pose.camera.to_camera(P_p[:, 0])
    a_t, a_p = joint_angles(P_t, R_t), joint_angles(P_p, R_p)
    feet = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]
    contacts = planted(P_t[:, feet], FPS)
    soles_p = sole_heights(s * P_p, s * pred.skeleton.rest_positions()[:J])
    soles_t = sole_heights(P_t, truth.skeleton.rest_positions()[:J], truth_floor)
    on_floor = np.stack([contacts[:, :2].any(-1), contacts[:, 2:].any(-1)], -1)  # FOOT_JOINTS: left two, right two
    hover = (soles_p - soles_t)[on_floor]
    up_p = pose.camera.to_camera(np.array([0.0, 1.0, 0.0])) - pose.camera.to_camera(np.zeros(3))
    up_t = camera_coords(cams[0], np.array([0.0, 1.0, 0.0])) - camera_coords(cams[0], np.zeros(3))
    tilt = float(np.degrees(np.arccos(np.clip(up_p @ up_t / np.linalg.norm(up_p) / np.linalg.norm(up_t), -1, 1))))
    return {
        "mpjpe": 1000 * mpjpe(rel_p, rel_t), "pa_mpjpe": 1000 * pa_mpjpe(rel_p, rel_t),
        "root": 1000 * float(np.linalg.norm((root_p - root_p[0]) - (root_t - root_t[0]), axis=-1).mean()),
        "head_pitch": float(np.abs(a_p["head_pitch"] - a_t["head_pitch"]).mean()),
        "head_pitch_bias": float((a_p["head_pitch"] - a_t["head_pitch"]).mean()),
        "neck": float(np.abs(a_p["neck"] - a_t["neck"]).mean()),
        "knee": float(np.abs(a_p["knee_flexion"] - a_t["knee_flexion"]).mean()),
        "valgus": float(np.abs(a_p["knee_valgus"] - a_t["knee_valgus"]).mean()),
        "valgus_bias": float((a_p["knee_valgus"] - a_t["knee_valgus"]).mean()),
        "elbow": float(np.abs(a_p["elbow"] - a_t["elbow"]).mean()),
        "crossed": 100 * wrongly_crossed(P_p, P_t),
        "skate": 100 * foot_skate(s * P_p, FPS, contacts), "skate_truth": 100 * foot_skate(P_t, FPS, contacts),
        "skate_added": 100 * added_skate(s * P_p[:, feet], P_t[:, feet], contacts, FPS),
        "slide": 100 * contact_slide(s * P_p[:, feet], contacts, FPS),
        "slide_truth": 100 * contact_slide(P_t[:, feet], contacts, FPS),
        "hover": 100 * float(hover.mean()) if hover.size else float("nan"),
        "tilt": tilt, "lag_ms": 1000 / FPS * best_lag(rel_p, rel_t),
        "jitter": jitter(s * P_p, FPS), "jitter_truth": jitter(P_t, FPS),
        "detected": 100 * pose.detection_rate,
        "pan": getattr(pose.camera_motion, "pan_degrees", float("nan")),
        "pan_truth": float(np.ptp(np.degrees(np.unwrap([math.atan2(c.forward[0], c.forward[2]) for c in cams[:T]])))),
    }


# ----------------------------------------------------------------------------------------------------------
# The suite
# ----------------------------------------------------------------------------------------------------------

RENDER_VERSION = 2  # bump when the scene changes: kept renders (BENCH_POSE_VIDEOS) are made again


def run_case(case: Case, folder: Path, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    from core.character_library import load_character
    from pose.pipeline import video_to_motion

    character = load_character(case.character)
    truth = truth_motion(case, character)
    cams = cameras(case, character, truth)
    name = f"v{RENDER_VERSION}_{seed}_{case.label}_{SECONDS:g}s".replace(" / ", "_").replace(" ", "_")
    path = folder / f"{name.replace('(', '').replace(')', '')}.mp4"
    t0 = time.perf_counter()
    if not path.is_file():
        render_case(case, character, truth, cams, path.with_suffix(".part.mp4"), seed)
        path.with_suffix(".part.mp4").rename(path)
    t1 = time.perf_counter()
    pose = video_to_motion(path)
    t2 = time.perf_counter()
    floor = float(np.asarray(character.rest_vertices)[:, 1].min())
    return compare(truth, cams, pose, floor), {"render": t1 - t0, "pose": t2 - t1}


def _mean(results: list[dict[str, float]], key: str) -> float:
    values = [r[key] for r in results if r.get(key) == r.get(key)]
    return float(np.mean(values)) if values else float("nan")


_TARGETS = {"head_pitch": ("head pitch error", "deg", 10.0), "knee": ("knee flexion error", "deg", 10.0),
            "valgus": ("knee valgus error", "deg", 10.0), "neck": ("neck angle error", "deg", None),
            "elbow": ("elbow angle error", "deg", None),
            "crossed": ("frames with a wrist wrongly past the body's midline", "%", None),
            "skate": ("foot skate where planted", "cm/s", 2.0),
            "skate_added": ("foot skate beyond the truth's own where planted", "cm/s", 2.0),
            "slide": ("foot slide over whole contacts", "cm/s", 2.0),
            "tilt": ("floor tilt", "deg", None), "root": ("root path error", "mm", None),
            "lag_ms": ("lag", "ms", None)}


def run() -> list[Row]:
    if not BANDAI.is_dir():
        return [Row("pose accuracy: skipped (../shared/data absent)", float("nan"), "")]
    full = os.environ.get("BENCH_POSE_ACCURACY", "") == "full"
    rows: list[Row] = []
    results: list[tuple[Case, dict[str, float]]] = []
    keep = os.environ.get("BENCH_POSE_VIDEOS")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for k, case in enumerate(cases(full)):
            m, sec = run_case(case, folder, k)
            results.append((case, m))
            note = (f"PA {m['pa_mpjpe']:.0f} mm, root {m['root']:.0f} mm, head pitch {m['head_pitch']:.0f}° "
                    f"(bias {m['head_pitch_bias']:+.0f}), neck {m['neck']:.0f}°, knee {m['knee']:.0f}°, valgus "
                    f"{m['valgus']:.0f}° (bias {m['valgus_bias']:+.0f}), elbow {m['elbow']:.0f}°, wrist wrongly "
                    f"crossed {m['crossed']:.0f} % of frames, skate "
                    f"{m['skate']:.1f} cm/s (truth {m['skate_truth']:.1f}, beyond the truth's {m['skate_added']:.1f}), slide {m['slide']:.1f} cm/s (truth "
                    f"{m['slide_truth']:.1f}), feet {m['hover']:+.1f} cm, tilt "
                    f"{m['tilt']:.1f}°, lag {m['lag_ms']:.0f} ms, jitter {m['jitter']:.1f} (truth "
                    f"{m['jitter_truth']:.1f}) m/s², {m['detected']:.0f} % detected, camera turned "
                    f"{m['pan']:.0f}° (truth {m['pan_truth']:.0f}°); render {sec['render']:.0f} s, "
                    f"pose {sec['pose']:.0f} s")
            rows.append(Row(f"MPJPE {case.label}", m["mpjpe"], "mm", higher_is_better=False, note=note))
            print(f"  {case.label}: MPJPE {m['mpjpe']:.0f} mm; {note}", flush=True)
    for subset, name in ((False, "tuning"), (True, "held out")):
        chosen = [m for c, m in results if c.held_out == subset]
        if not chosen:
            continue
        rows.append(Row(f"MPJPE, mean of {name} cases", _mean(chosen, "mpjpe"), "mm", higher_is_better=False,
                        note=f"{len(chosen)} cases"))
        rows.append(Row(f"PA-MPJPE, mean of {name} cases", _mean(chosen, "pa_mpjpe"), "mm", higher_is_better=False))
        for key, (label, unit, target) in _TARGETS.items():
            rows.append(Row(f"{label}, mean of {name} cases", _mean(chosen, key), unit, target,
                            higher_is_better=False))
        rows.append(Row(f"feet height where planted, mean |error| of {name} cases",
                        float(np.nanmean([abs(m["hover"]) for m in chosen])), "cm", 2.0, higher_is_better=False))
    return rows
