"""Hands: the finger fit inverts its own hand model, respects a hand's limits, and cleaning fills and relaxes."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pose.estimators import LM, elbow_crop, hand_crop, hand_roi
from pose.hands import (ANGLE_NAMES, DIP_PER_PIP, GESTURES, LIMITS, MIN_MCP_PER_PIP, RELAXED, angles_to_quats,
                        assign_sides, clean_angles, fill_skipped, finger_prior, fit_hands, gesture_track, hand_angles,
                        landmarks_from_angles, palm_landmarks, palm_rotation)


def _limits() -> tuple[np.ndarray, np.ndarray]:
    keys = [n if n.startswith("thumb_") and not n.startswith("thumb_swing") else
            "thumb_swing" if n.startswith("thumb_swing") else n.split("_")[1] for n in ANGLE_NAMES]
    return np.radians([LIMITS[k][0] for k in keys]), np.radians([LIMITS[k][1] for k in keys])


@pytest.mark.parametrize("side", [0, 1], ids=["left", "right"])
def test_fit_inverts_the_hand_model_in_any_pose_and_place(side):
    rng = np.random.default_rng(3 + side)
    lo, hi = _limits()
    angles = rng.uniform(0.9 * lo, 0.9 * hi, (100, 20))
    angles[:, :2] = rng.uniform(-0.7, 0.7, (100, 2))  # thumb swing: a direction times an angle below the limit
    R = Rotation.random(100, random_state=side).as_matrix()
    lms = np.einsum("tij,tnj->tni", R, landmarks_from_angles(angles, side, 0.09)) * 900 + rng.normal(size=(100, 1, 3))
    assert np.allclose(hand_angles(lms, side), angles, atol=1e-6)
    assert np.allclose(palm_rotation(lms, side), R, atol=1e-9)


def test_fingers_stay_within_a_hands_limits():
    over = np.radians(np.tile([0, 0, 0, 0] + [40.0, -60.0, 150.0, -40.0] * 4, (3, 1)))  # spread, hyperextension
    lms = landmarks_from_angles(over, 0)
    got = np.degrees(hand_angles(lms, 0))
    lo, hi = np.degrees(_limits()[0]), np.degrees(_limits()[1])
    assert (got >= lo - 1e-6).all() and (got <= hi + 1e-6).all()
    assert np.allclose(got[:, 4::4], LIMITS["spread"][1]) and np.allclose(got[:, 5::4], LIMITS["mcp"][0])


def test_gestures_come_back_as_themselves():
    for name, angles in GESTURES.items():
        got = hand_angles(landmarks_from_angles(angles[None], 1), 1)[0]
        assert np.degrees(np.abs(got - angles)).max() < 1e-4, name


@pytest.mark.parametrize("side", [0, 1], ids=["left", "right"])
def test_a_finger_read_bent_backwards_is_read_curled_into_the_palm(side):
    # The hand model's depth of a finger seen from the front can put a curled finger behind the palm's plane; a
    # hand cannot bend that far back, so the mirrored reading (curled towards the palm) is the one kept.
    fist = GESTURES["fist"].copy()
    backwards = fist.copy()
    backwards[5:8] *= -1  # index bent back as far as the fist curls it
    backwards[13:16] *= -1  # and the ring finger
    backwards[9:12] = np.radians([-20.0, 3.0, -8.0])  # middle finger: slightly back, within a hand's limits
    R = Rotation.from_euler("xyz", [30, -50, 100], degrees=True).as_matrix()
    lms = landmarks_from_angles(backwards[None], side, 0.09) @ R.T * 900
    got = np.degrees(hand_angles(lms, side)[0])
    want = np.degrees(fist)
    assert np.allclose(got[5:8], want[5:8], atol=1e-4) and np.allclose(got[13:16], want[13:16], atol=1e-4)
    assert np.allclose(got[9:12], [-20.0, 3.0, -8.0], atol=1e-4)  # a reading a hand can take is kept as read
    assert np.allclose(got[17:20], want[17:20], atol=1e-4)


def test_finger_prior_bends_a_fingers_joints_together_and_keeps_the_thumb():
    deg = np.zeros((3, 20))
    deg[0, :4] = [30.0, -10.0, 20.0, 40.0]  # thumb
    deg[0, 4:8] = [15.0, 0.0, 90.0, 0.0]  # index: a hook read with a straight knuckle and DIP, spread 15
    deg[0, 8:12] = [10.0, 5.0, 3.0, 0.0]  # middle: open, spread kept
    deg[0, 12:16] = [-12.0, 80.0, 30.0, 50.0]  # ring: knuckle already bent further than the floor
    deg[1] = np.degrees(GESTURES["open"])
    deg[2] = np.degrees(GESTURES["fist"])
    got = np.degrees(finger_prior(np.radians(deg)))
    assert np.allclose(got[0, :4], deg[0, :4])
    assert np.allclose(got[0, 4:8], [0.0, MIN_MCP_PER_PIP * 90.0, 90.0, DIP_PER_PIP * 90.0])
    assert np.allclose(got[0, 8:12], [10.0 * (1 - 8.0 / 90.0), 5.0, 3.0, DIP_PER_PIP * 3.0])
    assert np.allclose(got[0, 12:16], [0.0, 80.0, 30.0, DIP_PER_PIP * 30.0])
    assert np.allclose(got[1], deg[1])  # an open hand is a hand
    assert np.abs(got[2] - deg[2]).max() < 2.0  # and a fist stays a fist
    lo, hi = np.degrees(_limits()[0]), np.degrees(_limits()[1])
    wild = np.degrees(finger_prior(np.radians(np.tile(hi, (1, 1)))))
    assert (wild >= lo - 1e-6).all() and (wild <= hi + 1e-6).all()


def test_cleaning_interpolates_short_gaps_relaxes_long_ones_and_unseen_hands():
    fps, T = 30.0, 120
    track = gesture_track(["fist"], T / fps, fps)  # a held fist
    angles = np.stack([track, track], axis=1)
    found = np.ones((T, 2), bool)
    found[40:44, 0] = False  # 0.13 s: interpolated, stays a fist
    found[60:100, 0] = False  # 1.3 s: eases to relaxed in the middle
    found[:, 1] = False  # never seen
    out = clean_angles(np.where(found[..., None], angles, 0.0), found, fps, 0.5)
    fist = GESTURES["fist"]
    assert np.degrees(np.abs(out[38:46, 0] - fist)).max() < 1.0
    assert np.degrees(np.abs(out[80, 0] - RELAXED)).max() < 1.0
    assert np.allclose(out[:, 1], RELAXED, atol=1e-9)
    step = np.degrees(np.abs(np.diff(out[:, 0], axis=0))).max()
    assert step < 15.0  # eased over EASE_SECONDS: a jump would move the fist's middle joints ~80 degrees at once


def test_hands_are_kept_on_the_side_of_the_body_wrist_they_are_at():
    body = np.zeros((4, 33, 2))
    body[:, LM["left_wrist"]], body[:, LM["right_wrist"]] = (500.0, 300.0), (200.0, 300.0)
    body[:, LM["left_elbow"]], body[:, LM["right_elbow"]] = (520.0, 450.0), (180.0, 450.0)
    body[:, LM["left_shoulder"]], body[:, LM["right_shoulder"]] = (420.0, 250.0), (280.0, 250.0)
    hand = np.zeros((21, 3))
    hands = np.full((4, 2, 21, 3), np.nan)
    hands[0, 0] = hand + (505, 295, 0)  # at the left wrist: left
    hands[1, 0] = hand + (205, 305, 0)  # reported as left, but at the right wrist: moved to the right
    hands[2, 1] = hand + (900, 900, 0)  # nowhere near a wrist or an elbow: dropped
    hands[3, 1] = hand + (640, 420, 0)  # off the wrist (misplaced by the body model), in the left elbow's reach
    out = assign_sides(hands, body)
    found = np.isfinite(out).all(axis=(2, 3))
    assert found.tolist() == [[True, False], [False, True], [False, False], [True, False]]


def test_palm_landmarks_turn_the_body_hand_and_keep_its_size():
    rng = np.random.default_rng(0)
    world = rng.normal(0, 0.3, (4, 33, 3))
    R = Rotation.random(4, random_state=5).as_matrix()
    hands = np.full((4, 2, 21, 3), np.nan)
    hands[:, 0] = np.einsum("tij,nj->tni", R, landmarks_from_angles(RELAXED[None], 0)[0]) * 100
    out = palm_landmarks(world, hands)
    for t in range(4):
        w, i, p = (out[t, LM[f"left_{n}"]] for n in ("wrist", "index", "pinky"))
        along = R[t] @ np.array([1.0, 0, 0])
        mid = 0.5 * (i + p) - w
        assert np.allclose(mid / np.linalg.norm(mid), along, atol=1e-9)
        assert np.isclose(np.linalg.norm(mid), np.linalg.norm(0.5 * (world[t, LM["left_index"]]
                                                                    + world[t, LM["left_pinky"]]) - w))
    assert np.array_equal(out[:, LM["right_index"]], world[:, LM["right_index"]])  # no right hand: untouched


def test_fit_hands_gives_finger_quaternions_of_the_landmarks():
    T = 30
    track = gesture_track(["point"], 1.0, 30.0)
    R = Rotation.from_euler("y", 90, degrees=True).as_matrix()
    body = np.zeros((T, 33, 2))
    hands = np.full((T, 2, 21, 3), np.nan)
    for s, side in enumerate(("left", "right")):
        lm = landmarks_from_angles(track, s) @ R.T * 80 + (300 + 200 * s, 300, 0)
        hands[:, s] = lm
        body[:, LM[f"{side}_wrist"]] = lm[:, 0, :2]
        body[:, LM[f"{side}_elbow"]] = lm[:, 0, :2] + (0, 200)
    tracks = fit_hands(hands, body, 30.0, 0.5)
    assert tracks.found.all()
    expected = angles_to_quats(np.stack([finger_prior(track)] * 2, axis=1))
    assert np.abs(np.abs(np.sum(tracks.rotations * expected, -1)) - 1).max() < 1e-6


def test_hand_crop_follows_the_forearm_and_stays_in_the_frame():
    image = np.zeros((33, 2))
    image[LM["left_elbow"]], image[LM["left_wrist"]] = (600.0, 500.0), (600.0, 300.0)
    image[LM["left_shoulder"]] = (450.0, 500.0)
    assert elbow_crop(image, "left", 1280, 720) == (600 - 180, 500 - 180, 360)
    x0, y0, size = hand_crop(image, "left", 1280, 720)
    assert size == 400 and (x0 + size / 2, y0 + size / 2) == (600, 220)
    image[LM["left_wrist"]] = (1270.0, 300.0)
    image[LM["left_elbow"]] = (1070.0, 300.0)
    x0, _, size = hand_crop(image, "left", 1280, 720)
    assert x0 + size == 1280
    image[LM["left_wrist"]] = (np.nan, np.nan)
    assert hand_crop(image, "left", 1280, 720) is None


def test_the_fitted_wrist_turns_with_the_palm():
    # The body's index/pinky landmarks say one hand orientation; the hand landmarks another (the hand twisted 50
    # degrees about the forearm and bent 30 at the wrist): after palm_landmarks, the fit's hand follows the palm.
    from core.motion import Motion
    from core.skeleton import CANONICAL_JOINTS, canonical_skeleton
    from pose.fit import BodyLengths, fit_skeleton, landmarks_from_pose, person_offsets

    L = BodyLengths()
    sk = canonical_skeleton(person_offsets(L))
    T = 10
    q = np.tile([1.0, 0, 0, 0], (T, 22, 1))
    q[:, CANONICAL_JOINTS.index("LeftArm")] = Rotation.from_rotvec(np.outer(np.linspace(-1.0, 0.3, T), [0, 0, 1])
                                                                   ).as_quat()[:, [3, 0, 1, 2]]
    pose = Motion(sk, q, np.tile(sk.offsets[0], (T, 1)), 30.0).fk()
    X, W = pose.positions.numpy(), pose.rotations.numpy()
    P = landmarks_from_pose(X, W, L)
    hand = CANONICAL_JOINTS.index("LeftHand")
    turn = (Rotation.from_rotvec([0.87, 0, 0]) * Rotation.from_rotvec([0, 0, -0.52])).as_matrix()  # twist, bend
    R_true = W[:, hand] @ turn
    lms = np.einsum("tij,nj->tni", R_true, landmarks_from_angles(RELAXED[None], 0, 0.08)[0]) + X[:, hand, None]
    hands = np.full((T, 2, 21, 3), np.nan)
    hands[:, 0] = lms
    fit = fit_skeleton(palm_landmarks(P, hands), lengths=L)
    R_fit = fit.world_rotations[:, hand]
    angle = np.degrees(np.linalg.norm(Rotation.from_matrix(np.swapaxes(R_fit, 1, 2) @ R_true).as_rotvec(), axis=-1))
    assert angle.max() < 1.0
    before = fit_skeleton(P, lengths=L).world_rotations[:, hand]
    assert np.degrees(np.linalg.norm(Rotation.from_matrix(np.swapaxes(before, 1, 2) @ R_true).as_rotvec(),
                                     axis=-1)).min() > 40  # without the palm, the wrist stays where the body put it


def test_hand_roi_boxes_the_hand_and_turns_with_it():
    # A relaxed left hand, fingers pointing up in the image (canonical +X up, the thumb side +Z to the right).
    lm = landmarks_from_angles(RELAXED[None], 0)[0] * 100
    up = np.stack([300 + lm[:, 2], 300 - lm[:, 0]], axis=-1)
    x, y, size, rotation = hand_roi(up)
    assert abs(rotation) < np.radians(15)
    palm = up[[0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18]]
    assert np.all(np.abs(palm - (x, y)) <= size / 2)  # the box holds the palm with room to spare
    assert 1.5 * np.ptp(palm, axis=0).max() < size < 3 * np.ptp(up, axis=0).max()
    assert y < 0.5 * (palm[:, 1].min() + palm[:, 1].max())  # shifted towards the fingers
    # The same hand turned 40 degrees clockwise in the image about (200, 250): the box turns and moves with it.
    a = np.radians(40)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    turned = (up - (200, 250)) @ R.T + (200, 250)
    x2, y2, size2, rotation2 = hand_roi(turned)
    assert np.isclose(rotation2 - rotation, a) and np.isclose(size2, size)
    assert np.allclose((x2, y2), R @ (x - 200, y - 250) + (200, 250))


def test_hand_roi_of_a_fist_has_room_for_a_finger_stretched_out_of_it():
    # The box is where the model looks next: a fist's box must hold the index finger when it points out of it.
    def up(angles):  # fingers up in the image, seen from the back of the hand
        lm = landmarks_from_angles(angles[None], 0)[0] * 100
        return np.stack([300 + lm[:, 2], 300 - lm[:, 0]], axis=-1)

    fist, point, open_hand = up(GESTURES["fist"]), up(GESTURES["point"]), up(GESTURES["open"])
    x, y, size, rotation = hand_roi(fist)
    assert abs(rotation) < np.radians(15)
    assert np.all(np.abs(point - (x, y)) <= 0.45 * size)  # the pointing hand, tip included, with a margin
    assert size > 0.9 * hand_roi(open_hand)[2]  # about an open hand's box


def test_a_small_fist_is_a_hand_and_a_speck_is_not():
    from pose.estimators import _speck

    shoulders = 95.0  # pixels; an open hand half as long
    for name, view in (("open", [0, 2]), ("fist", [0, 2]), ("fist", [1, 2])):  # from the front; a fist end on
        lm = landmarks_from_angles(GESTURES[name][None], 1, 0.5 * shoulders / 2.04)[0][:, view] + 300
        assert not _speck(lm, shoulders), name
    blob = np.random.default_rng(0).uniform(0, 10, (21, 2)) + 300
    assert _speck(blob, shoulders) and _speck(blob, 30.0)  # a few pixels, even beside narrow shoulders


def test_skipped_frames_are_filled_between_frames_that_found_the_hand():
    T = 7
    hands = np.full((T, 2, 21, 3), np.nan)
    looked = np.array([1, 0, 1, 0, 1, 0, 0], bool)
    hands[0, 0], hands[2, 0], hands[4, 0] = 0.0, 2.0, 4.0  # the left hand found at every look
    hands[0, 1] = 5.0  # the right one only at the first
    filled = fill_skipped(hands, looked)
    assert np.allclose(filled[:5, 0, :, :], np.arange(5.0)[:, None, None])
    assert np.isnan(filled[5:, 0]).all()  # nothing after the last look
    assert np.isnan(filled[1:, 1]).all()  # no fill where a neighbour missed it


def test_a_hands_box_moves_with_its_wrist_unless_the_wrist_jumped():
    from pose.estimators import wrist_travel

    lm = landmarks_from_angles(RELAXED[None], 0)[0] * 100
    hand = np.stack([300 + lm[:, 2], 300 - lm[:, 0]], axis=-1)  # its wrist at (300, 300), about 20 px across
    span = np.ptp(hand, axis=0).max()
    then = np.array([[302.0, 298.0], [600.0, 300.0]])  # the body's left wrist on the hand, the right far off
    assert np.allclose(wrist_travel(hand, then, then + (0.5 * span, -0.2 * span)), (0.5 * span, -0.2 * span))
    assert np.allclose(wrist_travel(hand, then, then + (3 * span, 0)), 0)  # jumped: a misplaced wrist
    far = np.array([[300 + 2 * span, 300.0], [600.0, 300.0]])  # no body wrist near the hand: nothing to follow
    assert np.allclose(wrist_travel(hand, far, far + (5.0, 0)), 0)
    assert np.allclose(wrist_travel(hand, then, np.full((2, 2), np.nan)), 0)  # the body lost its wrist


def test_tracking_a_hand_keeps_it_at_the_confidence_that_found_it():
    pytest.importorskip("mediapipe")
    from mediapipe.calculators.util import thresholding_calculator_pb2

    from pose.estimators import HAND_CONFIDENCE, _hand_graph_config

    nodes = [n for n in _hand_graph_config().node if n.calculator == "ThresholdingCalculator"]
    ext = thresholding_calculator_pb2.ThresholdingCalculatorOptions.ext
    assert [n.options.Extensions[ext].threshold for n in nodes] == pytest.approx([HAND_CONFIDENCE] * 2)
