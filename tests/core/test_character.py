"""The built-in characters in assets/characters (made by scripts/make_characters.py)."""
import numpy as np
import pytest
import torch

from core.character import PART_NAMES
from core.character_library import UnknownCharacterError, builtin_character_names, load_character
from core.motion import Motion
from core.skeleton import CANONICAL_JOINTS, FINGER_JOINTS, HANDS_JOINTS, HANDS_PARENTS

NAMES = builtin_character_names()


@pytest.fixture(scope="module")
def characters():
    return {name: load_character(name) for name in NAMES}


def _identity_motion(ch, frames=1):
    sk = ch.skeleton
    rot = np.zeros((frames, sk.num_joints, 4))
    rot[..., 0] = 1
    return Motion(sk, rot, np.tile(sk.offsets[0], (frames, 1)), 30.0)


def _winding_numbers(v, f, points):
    """Generalised winding number of a closed mesh at each point (1 inside, 0 outside)."""
    tri = v[f][None] - points[:, None, None, :]  # (P, F, 3, 3)
    a, b, c = tri[..., 0, :], tri[..., 1, :], tri[..., 2, :]
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
    den = (la * lb * lc + np.einsum("pfi,pfi->pf", a, b) * lc + np.einsum("pfi,pfi->pf", b, c) * la
           + np.einsum("pfi,pfi->pf", c, a) * lb)
    return np.arctan2(det, den).sum(1) / (2 * np.pi)


def test_at_least_four_builtin_characters():
    assert len(NAMES) >= 4


def test_unknown_character_lists_names():
    with pytest.raises(UnknownCharacterError) as err:
        load_character("nope")
    for name in NAMES:
        assert name in str(err.value)


def test_load_is_case_insensitive():
    assert load_character(NAMES[0].upper()).name == NAMES[0]


@pytest.mark.parametrize("name", NAMES)
def test_canonical_skeleton_in_tpose(characters, name):
    ch = characters[name]
    sk = ch.skeleton
    assert sk.names == HANDS_JOINTS and sk.parents == HANDS_PARENTS  # the 22 canonical joints and 30 finger joints
    np.testing.assert_allclose(sk.rest_rotations, np.tile([1.0, 0, 0, 0], (len(HANDS_JOINTS), 1)))
    P = {n: p for n, p in zip(sk.names, sk.rest_positions())}
    np.testing.assert_allclose(sk.offsets[0], P["Hips"])  # root offset = hips position in the world
    for side, s in (("Left", 1), ("Right", -1)):
        # arms straight out along +-X (the left arm to +X)
        xs = [s * P[side + j][0] for j in ("Shoulder", "Arm", "ForeArm", "Hand")]
        assert all(np.diff(xs) > 0) and xs[0] > 0
        for j in ("Arm", "ForeArm", "Hand"):
            assert abs(P[side + j][1] - P[side + "Arm"][1]) < 0.02
        # legs down, toes forward (+Z) and down
        ys = [P[side + j][1] for j in ("UpLeg", "Leg", "Foot", "ToeBase")]
        assert all(np.diff(ys) < 0)
        assert P[side + "ToeBase"][2] > P[side + "Foot"][2] + 0.05
        assert s * P[side + "UpLeg"][0] > 0
    ys = [P[j][1] for j in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head")]
    assert all(np.diff(ys) > 0)
    assert P["Head"][1] < ch.height - 0.1  # the head joint sits at the base of the skull


@pytest.mark.parametrize("name", NAMES)
def test_mesh_watertight_and_outward(characters, name):
    ch = characters[name]
    v, f = ch.rest_vertices, ch.faces
    assert 8000 <= len(f) <= 12000
    assert np.isfinite(v).all()
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    n = len(v)
    und = np.unique(np.sort(e, 1)[:, 0] * n + np.sort(e, 1)[:, 1], return_counts=True)[1]
    assert (und == 2).all(), "every edge must be shared by exactly two faces"
    assert len(np.unique(e[:, 0] * n + e[:, 1])) == len(e), "faces must be consistently oriented"
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6
    assert volume > 0, "faces must be counter-clockwise seen from outside"
    assert len(np.unique(f)) == len(v), "no unused vertices"


@pytest.mark.parametrize("name", NAMES)
def test_joints_inside_the_body(characters, name):
    ch = characters[name]
    w = _winding_numbers(ch.rest_vertices, ch.faces, ch.skeleton.rest_positions())
    assert (w > 0.5).all(), [j for j, x in zip(HANDS_JOINTS, w) if x <= 0.5]


@pytest.mark.parametrize("name", NAMES)
def test_skin_weights_parts_colours(characters, name):
    ch = characters[name]
    V = len(ch.rest_vertices)
    assert ch.skin_indices.shape == (V, 4) and ch.skin_weights.shape == (V, 4)
    assert (ch.skin_weights >= 0).all()
    np.testing.assert_allclose(ch.skin_weights.sum(1), 1.0, atol=1e-5)
    assert ch.skin_indices.min() >= 0 and ch.skin_indices.max() < len(HANDS_JOINTS)
    assert set(np.unique(ch.parts)) == set(range(len(PART_NAMES)))
    assert ch.colors is not None and ch.colors.shape == (V, 3)
    assert ch.colors.min() >= 0 and ch.colors.max() <= 1
    # no arm vertex is weighted to a leg bone and vice versa
    dense = ch.dense_weights(torch.float64).numpy()
    leg_bones = [i for i, n in enumerate(HANDS_JOINTS) if any(k in n for k in ("UpLeg", "Leg", "Foot", "Toe"))]
    arm_bones = [i for i, n in enumerate(HANDS_JOINTS) if any(k in n for k in ("ForeArm", "Hand"))]
    assert dense[ch.parts == PART_NAMES.index("arm")][:, leg_bones].max() == 0
    assert dense[ch.parts == PART_NAMES.index("leg")][:, arm_bones].max() == 0


@pytest.mark.parametrize("name", NAMES)
def test_feet_on_floor(characters, name):
    ch = characters[name]
    assert abs(ch.rest_vertices[:, 1].min()) < 1e-4
    P = ch.skeleton.rest_positions()
    assert P[:, 1].min() > 0


def test_heights_differ(characters):
    heights = [ch.height for ch in characters.values()]
    assert max(heights) / min(heights) > 1.4


def test_big_belly_sticks_out(characters):
    def belly(ch):
        torso = ch.rest_vertices[ch.parts == PART_NAMES.index("torso")]
        return torso[:, 2].max() / ch.height

    assert belly(characters["Bob"]) > 2.0 * belly(characters["Ava"])


@pytest.mark.parametrize("name", NAMES)
def test_identity_pose_reproduces_rest_mesh(characters, name):
    ch = characters[name]
    posed = ch.posed_vertices(_identity_motion(ch), torch.float64)[0].numpy()
    np.testing.assert_allclose(posed, ch.rest_vertices, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_bending_the_left_elbow_moves_only_the_left_arm(characters, name):
    ch = characters[name]
    m = _identity_motion(ch)
    j = CANONICAL_JOINTS.index("LeftForeArm")
    m.rotations[0, j] = [np.cos(np.pi / 4), 0, -np.sin(np.pi / 4), 0]  # 90 deg about -Y: forearm points forward
    posed = ch.posed_vertices(m, torch.float64)[0].numpy()
    moved = np.linalg.norm(posed - ch.rest_vertices, axis=1) > 1e-6
    assert moved.sum() > 100
    assert (ch.parts[moved] == PART_NAMES.index("arm")).all()
    assert (ch.rest_vertices[moved, 0] > 0).all()  # only the left arm
    hand = ch.skeleton.rest_positions()[CANONICAL_JOINTS.index("LeftHand")]
    tip = posed[np.argmax(ch.rest_vertices[:, 0])]
    assert tip[2] > hand[2] + 0.1  # the hand now points forward


@pytest.mark.parametrize("name", NAMES)
def test_each_finger_bends_alone(characters, name):
    """Five fingers a hand, each skinned to its own bones: bending one finger's three joints moves that finger's
    tip far and leaves the other fingertips and the rest of the body where they were."""
    ch = characters[name]
    P = ch.skeleton.rest_positions()
    v = ch.rest_vertices
    tips = {}
    for finger in ("Thumb", "Index", "Middle", "Ring", "Pinky"):  # the vertex farthest out along each finger
        base, last = (P[HANDS_JOINTS.index(f"LeftHand{finger}{k}")] for k in (1, 3))
        tips[finger] = int(np.argmax((v - base) @ (last - base) / np.linalg.norm(last - base)
                                     - 3 * np.linalg.norm(np.cross(v - last, last - base), axis=1)
                                     / np.linalg.norm(last - base)))
    for finger in ("Index", "Middle", "Ring", "Pinky"):
        m = _identity_motion(ch)
        for k in (1, 2, 3):  # curl 60 deg a joint: about -Z for the left hand (palm down, fingers along +X)
            m.rotations[0, HANDS_JOINTS.index(f"LeftHand{finger}{k}")] = [np.cos(np.pi / 6), 0, 0, -np.sin(np.pi / 6)]
        posed = ch.posed_vertices(m, torch.float64)[0].numpy()
        moved = np.linalg.norm(posed - v, axis=1)
        length = np.linalg.norm(v[tips[finger]] - P[HANDS_JOINTS.index(f"LeftHand{finger}1")])
        assert moved[tips[finger]] > 0.8 * length, finger
        for other, tip in tips.items():
            if other != finger:
                assert moved[tip] < 0.1 * length, (finger, other)
        assert (ch.parts[moved > 1e-6] == PART_NAMES.index("arm")).all()
        wrist = P[HANDS_JOINTS.index("LeftHand")]
        assert (v[moved > 1e-6, 0] > wrist[0]).all()  # nothing behind the wrist moves
        assert posed[tips[finger], 1] < v[tips[finger], 1] - 0.5 * length  # the tip went down, towards the palm


@pytest.mark.parametrize("name", NAMES)
def test_finger_bones_carry_the_finger_vertices(characters, name):
    ch = characters[name]
    dense = ch.dense_weights(torch.float64).numpy()
    fingers = [HANDS_JOINTS.index(n) for n in FINGER_JOINTS]
    on_fingers = dense[:, fingers].sum(1) > 0.5
    # both hands' fingers hold a fair share of the mesh (not a mitten: > 3 % of the vertices, here ~10 %)
    assert on_fingers.sum() > 0.03 * len(dense)
    assert (ch.parts[on_fingers] == PART_NAMES.index("arm")).all()
