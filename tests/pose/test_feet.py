"""Planted feet: a foot in contact stays on its spot and the leg reaches it; swapped legs are swapped back."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from core.motion import Motion
from core.skeleton import CANONICAL_JOINTS, canonical_skeleton
from pose.clean import swap_sides, untangle_sides
from pose.estimators import LM
from pose.feet import bridge_contacts, plant_legs
from pose.fit import HIP_JOINT_SHARE, BodyLengths, landmarks_from_pose, person_offsets

J = {n: k for k, n in enumerate(CANONICAL_JOINTS)}


def gliding_landmarks(T: int = 15, speed: float = 0.6, fps: float = 30.0) -> tuple[np.ndarray, BodyLengths]:
    """A person with bent knees carried along +Z at ``speed`` m/s without moving the legs: planted feet skate
    (what a root path at walking speed does to MediaPipe's too-short strides)."""
    L = BodyLengths()
    sk = canonical_skeleton(person_offsets(L))
    q = np.tile([1.0, 0, 0, 0], (T, 22, 1))
    for side in ("Left", "Right"):
        q[:, J[f"{side}UpLeg"]] = Rotation.from_rotvec([-0.35, 0, 0]).as_quat()[[3, 0, 1, 2]]  # thigh forward
        q[:, J[f"{side}Leg"]] = Rotation.from_rotvec([0.7, 0, 0]).as_quat()[[3, 0, 1, 2]]  # shin back
    root = np.zeros((T, 3))
    root[:, 1] = sk.offsets[0, 1]
    root[:, 2] = speed * np.arange(T) / fps
    pose = Motion(sk, q, root, fps).fk()
    P = landmarks_from_pose(pose.positions.numpy(), pose.rotations.numpy(), L)
    P[..., 1] -= P[:, [LM["left_foot_index"], LM["right_foot_index"]], 1].min()  # toes on the floor
    return P, L


def test_planted_foot_stays_on_its_spot_and_the_leg_keeps_its_lengths():
    P, L = gliding_landmarks()
    contacts = np.zeros((len(P), 2), bool)
    contacts[:, 0] = True  # the left foot is planted all along, the right one swings
    out, short = plant_legs(P, contacts, L)
    feet = (out[:, LM["left_ankle"]] + out[:, LM["left_heel"]] + out[:, LM["left_foot_index"]]) / 3
    assert np.ptp(feet[:, [0, 2]], axis=0).max() < 1e-3  # it was carried 0.28 m
    assert np.ptp(P[:, LM["left_ankle"], 2]) > 0.25
    assert not short.any()
    hips = 0.5 * (out[:, LM["left_hip"]] + out[:, LM["right_hip"]])
    hip = hips + HIP_JOINT_SHARE * (out[:, LM["left_hip"]] - hips)
    assert np.allclose(np.linalg.norm(out[:, LM["left_knee"]] - hip, axis=-1), L.thigh, atol=1e-6)
    assert np.allclose(np.linalg.norm(out[:, LM["left_ankle"]] - out[:, LM["left_knee"]], axis=-1), L.shin, atol=1e-6)
    # The knee still bends forwards (towards the toes), the right leg and the body are untouched.
    knee_fwd = out[:, LM["left_knee"], 2] - 0.5 * (hip[:, 2] + out[:, LM["left_ankle"], 2])
    assert (knee_fwd > 0).all()
    untouched = [k for k in range(33) if k not in [LM[f"{side}_{n}"] for side in ("left", "right")
                                                   for n in ("knee", "ankle", "heel", "foot_index")]]
    assert np.array_equal(out[:, untouched], P[:, untouched])
    right = [LM[f"right_{n}"] for n in ("knee", "ankle", "heel", "foot_index")]
    assert np.allclose(out[:, right], P[:, right], atol=1e-6)  # the model's legs have the lengths the IK uses



def test_each_part_of_a_planted_foot_stays_put_while_the_seen_foot_wobbles():
    P, L = gliding_landmarks()
    T = len(P)
    rng = np.random.default_rng(0)
    for name in ("heel", "foot_index"):  # MediaPipe's foot turns about its centre from frame to frame
        P[:, LM[f"left_{name}"], [0, 2]] += rng.normal(scale=0.02, size=(T, 2))
    contacts = np.zeros((T, 2), bool)
    contacts[:, 0] = True
    out, short = plant_legs(P, contacts, L)
    assert not short.any()
    for name in ("ankle", "heel", "foot_index"):
        assert np.ptp(out[:, LM[f"left_{name}"]][:, [0, 2]], axis=0).max() < 1e-3, name
    sole = np.minimum(out[:, LM["left_ankle"], 1] - L.ankle_height, out[:, LM["left_foot_index"], 1])
    assert np.abs(sole).max() < 1e-6  # on the floor in every frame


def test_a_still_foot_lost_for_a_moment_stays_planted_but_a_step_does_not():
    P, _ = gliding_landmarks(T=60, speed=0.0)
    fps = 30.0
    contacts = np.ones((60, 2), bool)
    contacts[20:26, 0] = False  # 0.2 s lost, back on the same spot
    contacts[20:26, 1] = False
    P[26:, [LM[f"right_{n}"] for n in ("ankle", "heel", "foot_index")], 2] += 0.3  # the right foot stepped
    out = bridge_contacts(P, contacts, fps)
    assert out[:, 0].all() and not out[20:26, 1].any()
    contacts[10:40, 0] = False  # a second without contact is a lift, wherever the foot comes down
    assert not bridge_contacts(P, contacts, fps)[10:40, 0].any()
    contacts[:] = True
    contacts[54:, 0] = False  # the clip ends with the still foot's speed unsure: it stays planted
    contacts[:5, 0] = False  # ...and so does its start
    contacts[:5, 1] = False  # the right foot was on another spot before the clip's first contact: a step
    out = bridge_contacts(P, contacts, fps)
    assert out[:, 0].all() and not out[:5, 1].any()


def test_a_still_foot_that_seems_to_wander_across_a_short_gap_stays_planted():
    """MediaPipe's still foot can land 12-19 cm from where it stood before a gap of a few frames (a standing call
    seen from 60 degrees; a punch's planted toe 17-19 cm); that is not a step, which moves a foot further."""
    P, _ = gliding_landmarks(T=60, speed=0.0)
    contacts = np.ones((60, 2), bool)
    contacts[20:27, :] = False  # 0.23 s lost
    feet = [LM[f"{side}_{n}"] for side in ("left", "right") for n in ("ankle", "heel", "foot_index")]
    wander = np.clip((np.arange(60) - 20) / 7, 0, 1)[:, None] * np.array([0.11, 0.0, 0.14])  # 17.8 cm
    P[:, feet[:3]] += wander[:, None]
    P[27:, feet[3:], 2] += 0.25  # the right foot stepped 25 cm
    out = bridge_contacts(P, contacts, 30.0)
    assert out[:, 0].all() and not out[20:27, 1].any()


def test_a_running_foot_lost_for_two_frames_stays_planted_but_a_three_frame_gap_is_judged_by_its_spots():
    """A running person's spots drift with the root path (MediaPipe's strides are short, the path travels at
    their speed): after a two-frame loss the same planted foot seems 40 cm on. No step is that quick, so the
    blink is bridged; a longer gap with the spots that far apart is a step."""
    P, _ = gliding_landmarks(T=60, speed=0.0)
    feet = [LM[f"{side}_{n}"] for side in ("left", "right") for n in ("ankle", "heel", "foot_index")]
    drift = 3.0 * np.arange(60) / 30.0  # 3 m/s along z, the whole body (the root path)
    P[:, :, 2] += drift[:, None]
    contacts = np.ones((60, 2), bool)
    contacts[30:32, 0] = False  # two frames lost
    contacts[30:33, 1] = False  # three frames lost
    out = bridge_contacts(P, contacts, 30.0)
    assert out[:, 0].all()
    assert not out[30:33, 1].any()
    contacts[:2, 0] = False  # at the clip's start a blink is not bridged blindly: the spots decide
    contacts[:, 1] = True
    assert not bridge_contacts(P, contacts, 30.0)[:2, 0].any()


def test_a_foot_high_in_the_air_at_the_clips_start_is_not_taken_as_planted():
    """A run filmed from its middle: the swinging foot comes down onto its landing spot over the first frames.
    Its travel seems short (the spot test alone filled the start), but a foot 30 cm above the other is in the
    air; only the frames next to the contact where it is lower are filled."""
    P, _ = gliding_landmarks(T=40, speed=0.0)
    contacts = np.ones((40, 2), bool)
    contacts[:6, 0] = False  # the left foot lands at frame 6
    contacts[34:, 1] = False  # the right foot lifts at frame 34
    heights = np.zeros((40, 2))
    heights[:4, 0] = [0.5, 0.4, 0.3, 0.1]  # still coming down; low from frame 3
    heights[36:, 1] = 0.3  # high from frame 36
    out = bridge_contacts(P, contacts, 30.0, heights=heights)
    assert not out[:3, 0].any() and out[3:, 0].all()
    assert out[:36, 1].all() and not out[36:, 1].any()
    assert bridge_contacts(P, contacts, 30.0)[:, 0].all()  # without heights: the spots alone (filled)


def _knee_bend(out: np.ndarray) -> np.ndarray:
    hips = 0.5 * (out[:, LM["left_hip"]] + out[:, LM["right_hip"]])
    hip = hips + HIP_JOINT_SHARE * (out[:, LM["left_hip"]] - hips)
    thigh, shin = out[:, LM["left_knee"]] - hip, out[:, LM["left_ankle"]] - out[:, LM["left_knee"]]
    cos = (thigh * shin).sum(-1) / np.linalg.norm(thigh, axis=-1) / np.linalg.norm(shin, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_a_spot_out_of_reach_straightens_the_knee_at_most_so_far_and_says_how_short(monkeypatch):
    """The gliding legs are seen bent 40 degrees; a spot out of reach straightens a planted knee by
    KNEE_FREEDOM at most (20 degrees bent, not straight), and the ankle stops short of its spot."""
    import pose.feet as feet

    P, L = gliding_landmarks(T=30, speed=3.0)  # 1.5 m in a second: no leg holds that foot
    contacts = np.zeros((len(P), 2), bool)
    contacts[:, 0] = True
    seen = _knee_bend(P)
    assert np.allclose(seen, 40.1, atol=0.5)
    out, short = plant_legs(P, contacts, L)
    assert short[:, 0].max() > 0.3 and not short[:, 1].any()
    # Frames where the body has passed the spot (the foot reaches back to it; where the spot lies far ahead, the
    # knee's plane between the one seen and the toes' is undefined, and the knee comes out straight).
    far = (short[:, 0] > 0) & (np.arange(len(P)) > len(P) // 2)
    assert far.sum() > 10
    assert np.allclose(_knee_bend(out)[far], seen[far] - feet.KNEE_FREEDOM, atol=0.5)
    monkeypatch.setattr(feet, "KNEE_FREEDOM", 180.0)  # no limit: the leg goes straight, pointing at the spot
    out, short = plant_legs(P, contacts, L)
    assert short[far, 0].min() > 0.0
    assert np.allclose(_knee_bend(out)[far], 0.0, atol=2.0)


def test_a_planted_foot_the_body_has_passed_turns_about_its_toe(monkeypatch):
    """Late in a stance the hips pass the planted foot and the leg no longer reaches its ankle's spot: the heel
    rises and the foot turns about the toe joint, which stays on its spot (letting the whole foot go slid it).
    MediaPipe draws the foot 3 cm longer than the fitted ankle-to-toe bone: the fitted toe stays put all the same."""
    import pose.feet as feet

    P, L = gliding_landmarks(T=20, speed=1.5)
    for side in ("left", "right"):
        ankle, toe = P[:, LM[f"{side}_ankle"]], P[:, LM[f"{side}_foot_index"]]
        P[:, LM[f"{side}_foot_index"]] = toe + 0.03 * (toe - ankle) / np.linalg.norm(toe - ankle, axis=-1, keepdims=True)
    bone = np.hypot(L.ankle_height, L.foot_length)
    contacts = np.zeros((len(P), 2), bool)
    contacts[:, 0] = True

    def fitted_toe(out: np.ndarray) -> np.ndarray:  # where the refit puts the toe joint: the bone's length along
        ankle, toe = out[:, LM["left_ankle"]], out[:, LM["left_foot_index"]]
        return ankle + bone * (toe - ankle) / np.linalg.norm(toe - ankle, axis=-1, keepdims=True)

    out, short = plant_legs(P, contacts, L)
    late = (short[:, 0] > 0) & (np.arange(len(P)) > len(P) // 2)  # the body has passed the spot, out of reach
    assert late.sum() >= 3 and short[late, 0].max() > 0.05
    held = ~late & (np.arange(len(P)) > len(P) // 2)
    assert held.any()
    toe, heel = fitted_toe(out), out[:, LM["left_heel"]]
    spot = toe[held][0, [0, 2]]
    assert np.abs(toe[late][:, [0, 2]] - spot).max() < 1e-3
    assert heel[late, 1].max() > heel[held, 1].max() + 0.05  # the heel lifts
    hips = 0.5 * (out[:, LM["left_hip"]] + out[:, LM["right_hip"]])
    hip = hips + HIP_JOINT_SHARE * (out[:, LM["left_hip"]] - hips)
    knee, ankle = out[late, LM["left_knee"]], out[late, LM["left_ankle"]]
    assert np.allclose(np.linalg.norm(knee - hip[late], axis=-1), L.thigh, atol=1e-6)
    assert np.allclose(np.linalg.norm(ankle - knee, axis=-1), L.shin, atol=1e-6)
    foot = np.linalg.norm(P[late, LM["left_ankle"]] - P[late, LM["left_foot_index"]], axis=-1)
    assert np.allclose(np.linalg.norm(ankle - out[late, LM["left_foot_index"]], axis=-1), foot, atol=1e-6)  # rigid
    monkeypatch.setattr(feet, "TOE_PIVOT", False)  # the whole foot let go: the toe slides after the body
    out, _ = plant_legs(P, contacts, L)
    assert np.abs(fitted_toe(out)[late][:, [0, 2]] - spot).max() > 0.03


def test_a_swinging_leg_keeps_the_bend_seen_whatever_mediapipe_made_its_length():
    """A frame where MediaPipe drew the shin 15 % longer than the clip's median: the swinging leg keeps its
    seen 40-degree bend (the hip-to-ankle distance, beyond the fitted leg's reach, had straightened it)."""
    P, L = gliding_landmarks(T=30, speed=0.0)
    knee = P[:, LM["left_knee"]]
    for name in ("ankle", "heel", "foot_index"):
        P[:, LM[f"left_{name}"]] = knee + 1.15 * (P[:, LM[f"left_{name}"]] - knee)
    contacts = np.zeros((len(P), 2), bool)
    contacts[:, 1] = True  # the left leg swings all along
    out, _ = plant_legs(P, contacts, L, fps=30.0)
    assert np.allclose(_knee_bend(out), _knee_bend(P), atol=0.5)


def side_walk_track(T: int = 90, fps: float = 30.0) -> np.ndarray:
    """``(T, 33, 2)`` pixels of a person walking across the image, seen from a little in front of the side: the
    legs swing past each other (their image positions cross twice a stride), which is no swap; the near (left)
    leg's joints lie lower in the image. (Seen exactly from the side, the legs meet in the image where they
    cross, and which is which between two crossings is not told by continuity.)"""
    t = np.arange(T) / fps
    image = np.zeros((T, 33, 2))
    x0 = 300 + 150 * t  # the body travels right
    for k in range(33):
        image[:, k] = np.stack([x0, np.full(T, 200.0 + 3 * k)], axis=1)
    for name, dy in (("shoulder", 0.0), ("hip", 150.0)):
        for side in ("left", "right"):
            image[:, LM[f"{side}_{name}"], 1] = 200 + dy
    for side, phase, near in (("left", 0.0, 60.0), ("right", np.pi, 0.0)):
        swing = 60 * np.sin(2 * np.pi * 1.0 * t + phase)
        for name, dy, share in (("knee", 230, 0.5), ("ankle", 310, 1.0), ("heel", 320, 1.0), ("foot_index", 320, 1.0)):
            image[:, LM[f"{side}_{name}"]] = np.stack([x0 + share * swing + (15 if name == "foot_index" else 0),
                                                       np.full(T, 200.0 + dy + share * near)], axis=1)
    return image


def test_legs_swapped_for_a_stretch_are_swapped_back_and_crossing_legs_are_left_alone():
    image = side_walk_track()
    valid = np.ones(len(image), bool)
    assert not untangle_sides(image, valid).any()  # legs passing each other are not a swap
    swapped = np.zeros(len(image), bool)
    swapped[20:41] = True
    assert np.array_equal(untangle_sides(swap_sides(image, swapped), valid), swapped)
    valid[30:33] = False  # a gap inside the stretch changes nothing
    assert np.array_equal(untangle_sides(swap_sides(image, swapped), valid), swapped & valid)


def test_a_frame_with_the_arms_mirrored_is_swapped_back_and_the_legs_are_left_alone():
    # MediaPipe mirrored a whole waving person for one frame of the 10 s bench clip; the filter spread it into a
    # 33 cm wobble of the arms over 15 frames. The arms are untangled as a group of their own.
    from pose.clean import ARM_PARTS

    image = side_walk_track()
    T = len(image)
    t = np.arange(T) / 30.0
    for side, sx in (("left", 1.0), ("right", -1.0)):  # arms waving at each side of the body
        for name, reach in (("shoulder", 20), ("elbow", 50), ("wrist", 80), ("pinky", 85), ("index", 88),
                            ("thumb", 84)):
            image[:, LM[f"{side}_{name}"]] = np.stack([image[:, LM[f"{side}_shoulder"], 0] + sx * reach,
                                                       200 + 30 * np.sin(2 * np.pi * t) * reach / 80], axis=1)
    valid = np.ones(T, bool)
    assert not untangle_sides(image, valid, ARM_PARTS).any()
    mirrored = np.zeros(T, bool)
    mirrored[50] = True
    assert np.array_equal(untangle_sides(swap_sides(image, mirrored, ARM_PARTS), valid, ARM_PARTS), mirrored)
    assert not untangle_sides(swap_sides(image, mirrored, ARM_PARTS), valid).any()  # the legs are not touched


def test_a_swap_at_the_clip_end_is_left_as_given():
    # Continuity cannot tell a stretch swapped up to the last frame from MediaPipe swapping the legs there.
    image = side_walk_track()
    valid = np.ones(len(image), bool)
    for stretch in (slice(80, None), slice(0, 6)):
        swapped = np.zeros(len(image), bool)
        swapped[stretch] = True
        assert not untangle_sides(swap_sides(image, swapped), valid).any()


def test_a_swinging_leg_keeps_the_knee_bend_it_was_seen_with():
    P, L = gliding_landmarks(T=30, speed=1.2)
    contacts = np.zeros((30, 2), bool)
    contacts[:5, 1] = contacts[25:, 1] = True  # the right foot planted, swinging between

    def knee(Q: np.ndarray) -> np.ndarray:
        hips = 0.5 * (Q[:, LM["left_hip"]] + Q[:, LM["right_hip"]])
        hip = hips + HIP_JOINT_SHARE * (Q[:, LM["right_hip"]] - hips)
        thigh, shin = Q[:, LM["right_knee"]] - hip, Q[:, LM["right_ankle"]] - Q[:, LM["right_knee"]]
        return np.degrees(np.arccos(np.sum(thigh * shin, -1) / np.linalg.norm(thigh, axis=-1)
                                    / np.linalg.norm(shin, axis=-1)))

    seen = knee(P)
    shifts = np.zeros((30, 2, 3, 3))
    shifts[:, 1, :, 2] = 0.25 * np.sin(np.pi * np.arange(30) / 29)[:, None]  # carried up to 25 cm ahead mid-swing
    kept, _ = plant_legs(P, contacts, L, shifts, fps=30.0)
    reached, _ = plant_legs(P, contacts, L, shifts)
    mid = slice(11, 19)  # 0.2 s and more from both contacts
    assert np.allclose(knee(kept)[mid], seen[mid], atol=1e-3)
    assert np.abs(knee(reached)[mid] - seen[mid]).max() > 5.0  # reaching the carried foot changes the bend
    assert np.allclose(kept[:5], reached[:5]) and np.allclose(kept[25:], reached[25:])  # planted: the same


def test_the_knee_bends_halfway_towards_the_toes():
    P, L = gliding_landmarks(T=5, speed=0.0)
    hips = 0.5 * (P[:, LM["left_hip"]] + P[:, LM["right_hip"]])
    hip = hips + HIP_JOINT_SHARE * (P[:, LM["left_hip"]] - hips)
    inward = _unit_x(hips - P[:, LM["left_hip"]])
    P[:, LM["left_knee"]] += 0.06 * inward  # seen knock-kneed
    contacts = np.ones((5, 2), bool)
    out, _ = plant_legs(P, contacts, L, fps=30.0)

    def plane_angle(knee: np.ndarray) -> np.ndarray:  # the bend's turn from the toes' direction, degrees
        u = P[:, LM["left_ankle"]] - hip
        u /= np.linalg.norm(u, axis=-1, keepdims=True)
        perp = lambda v: v - np.sum(v * u, -1, keepdims=True) * u  # noqa: E731
        bend, toes = perp(knee - hip), perp(P[:, LM["left_foot_index"]] - P[:, LM["left_heel"]])
        return np.degrees(np.arccos(np.sum(bend * toes, -1) / np.linalg.norm(bend, axis=-1)
                                    / np.linalg.norm(toes, axis=-1)))

    seen, fitted = plane_angle(P[:, LM["left_knee"]]), plane_angle(out[:, LM["left_knee"]])
    assert (seen > 10).all()
    assert np.allclose(fitted, seen / 2, atol=0.25 * seen)  # halfway (unit-vector blend: about half)


def _unit_x(v: np.ndarray) -> np.ndarray:
    v = v * [1.0, 0.0, 0.0]
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def facing_camera_world(T: int = 60, turn: float = 0.0, fps: float = 30.0) -> np.ndarray:
    """``(T, 33, 3)`` hip-centred landmarks in camera axes (x right, y down, z away) of a person facing the camera
    (their left at the image's right), knees bent, swaying 15 degrees either way, turned ``turn`` radians about
    the vertical (pi/2: seen side on)."""
    P, _ = gliding_landmarks(T=T, speed=0.0, fps=fps)
    P = P - 0.5 * (P[:, [LM["left_hip"]]] + P[:, [LM["right_hip"]]])
    yaw = turn + np.radians(15) * np.sin(2 * np.pi * np.arange(T) / T)
    P = np.einsum("tij,tkj->tki", Rotation.from_euler("y", yaw[:, None]).as_matrix(), P)
    return P * np.array([1.0, -1.0, -1.0])  # the camera on +Z looking back: x right, y down, z away


def mirror(world: np.ndarray, frames: np.ndarray, names: list[str]) -> np.ndarray:
    """MediaPipe's other reading of the same image: the ``names`` landmarks' left and right exchanged and their
    depths reflected about the hips' (the image stays as it was)."""
    out = world.copy()
    hips_z = 0.5 * (world[:, LM["left_hip"], 2] + world[:, LM["right_hip"], 2])
    for n in names:
        other = n.replace("left", "#").replace("right", "left").replace("#", "right")
        out[frames, LM[n]] = world[frames, LM[other]]
        out[frames, LM[n], 2] = 2 * hips_z[frames] - world[frames, LM[other], 2]
    return out


def test_a_person_read_as_seen_from_behind_for_a_few_frames_is_turned_back():
    # A runner filmed from the front (pose_accuracy's run clips): MediaPipe read 9 of 90 frames as seen from behind,
    # the legs a few pixels apart in the image, so their image continuity missed most of these.
    from pose.clean import mirrored_frames, unmirror
    from pose.estimators import LANDMARKS

    world = facing_camera_world()
    T = len(world)
    valid = np.ones(T, bool)
    image = world[..., :2] / (3.0 + world[..., 2:]) * 1000 + 500  # seen 3 m away
    frames = np.zeros(T, bool)
    frames[[20, 31, 32, 33]] = True
    seen = mirror(world, frames, list(LANDMARKS))
    for axis in ("hip", "shoulder"):
        assert not mirrored_frames(world, valid, axis).any()
        assert np.array_equal(mirrored_frames(seen, valid, axis), frames)
    valid[32] = False  # a gap inside the stretch changes nothing
    assert np.array_equal(mirrored_frames(seen, valid, "hip"), frames & valid)

    img, out, vis = image, seen, np.ones((T, 33))
    for axis in ("hip", "shoulder"):
        img, out, vis = unmirror(img, out, vis, frames, axis)
    lower = LM["left_hip"]
    assert np.allclose(out[:, :lower], world[:, :lower])  # head and arms: back as they were
    assert np.allclose(out[:, lower:, :2], world[:, lower:, :2])  # hips and legs: on their own sides
    assert np.allclose(out[:, [LM["left_hip"], LM["right_hip"]]], world[:, [LM["left_hip"], LM["right_hip"]]])
    swap = [LM[n.replace("left", "#").replace("right", "left").replace("#", "right")] for n in LANDMARKS]
    assert np.allclose(img[frames], image[frames][:, swap])  # the image labels go with them


def test_mirrored_halves_are_told_apart_and_side_on_nothing_is_told():
    from pose.clean import mirrored_frames
    from pose.estimators import LANDMARKS

    world = facing_camera_world()
    valid = np.ones(len(world), bool)
    frames = np.zeros(len(world), bool)
    frames[40:43] = True
    upper = [n for n in LANDMARKS[:LM["left_hip"]]]
    seen = mirror(world, frames, upper)  # a punch seen from 30 degrees: shoulders, arms and head only
    assert not mirrored_frames(seen, valid, "hip").any()
    assert np.array_equal(mirrored_frames(seen, valid, "shoulder"), frames)
    # Side on, a reflection in the image plane keeps the facing: nothing tells it, nothing is turned.
    side = facing_camera_world(turn=np.pi / 2)
    assert not mirrored_frames(mirror(side, frames, list(LANDMARKS)), valid, "hip").any()
    # Nor is a person who turns half round over a second (the facing passes side on, then faces away).
    turning = facing_camera_world(T=60, turn=0.0)
    yaw = np.linspace(0, np.pi, 60)
    turning = np.einsum("tij,tkj->tki", Rotation.from_euler("y", yaw[:, None]).as_matrix(), turning)
    for axis in ("hip", "shoulder"):
        assert not mirrored_frames(turning, valid, axis).any()


def test_arms_not_mirrored_with_their_shoulders_keep_their_seen_depths():
    # A walk seen from 60 degrees: MediaPipe read the shoulders and head as seen from behind for two frames, the
    # arms not. The arms' image continuity swaps them back; they are then taken as MediaPipe gave them, depths
    # included (their labels alone swapped back left their depths reflected).
    from pose.clean import untangle_person
    from pose.estimators import LANDMARKS

    world = facing_camera_world()
    T = len(world)
    image = world[..., :2] / (3.0 + world[..., 2:]) * 1000 + 500
    frames = np.zeros(T, bool)
    frames[[27, 29]] = True
    torso = [n for n in LANDMARKS[:LM["left_hip"]] if not any(p in n for p in ("elbow", "wrist", "pinky",
                                                                                 "index", "thumb"))]
    seen = mirror(world, frames, torso)
    swap = {LM[n]: LM[n.replace("left", "#").replace("right", "left").replace("#", "right")] for n in torso}
    seen_image = image.copy()
    for i, j in swap.items():
        seen_image[frames, i] = image[frames, j]
    img, out, vis = untangle_person(seen_image, seen, np.ones((T, 33)), np.ones(T, bool))
    arms = [LM[f"{s}_{n}"] for s in ("left", "right") for n in ("elbow", "wrist", "pinky", "index", "thumb")]
    assert np.allclose(out[:, arms], world[:, arms])
    assert np.allclose(img[:, arms], image[:, arms])
    face = [LM[n] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
    assert np.allclose(out[:, face], world[:, face])  # the head is turned back
