import pytest
import torch

from core.geometry.penetration import MissingPartsError, PenetrationModel, body_and_limb_masks
from core.kinematics import skinning_transforms
from core.skeleton import CANONICAL_JOINTS
from tests.core.geometry.shapes import ball_beside_box, box_and_ball, torso_only, turn_joint

SPINE = CANONICAL_JOINTS.index("Spine")
ARM = CANONICAL_JOINTS.index("LeftArm")


def test_penetration_model_sdf_at_rest_and_posed():
    c = box_and_ball(ball_joint=ARM)
    model = PenetrationModel.from_character(c, cell=0.02, dtype=torch.float64)
    rest = c.skeleton.rest_pose()
    identity = skinning_transforms(rest, rest)
    pts = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.09], [0.14, 1.2, 0.0], [0.0, 1.0, 0.15], [0.3, 1.0, 0.0]],
                       dtype=torch.float64)
    phi = model.body_sdf(pts, identity)
    assert torch.allclose(phi[:4], torch.tensor([-0.1, -0.01, -0.01, 0.05], dtype=torch.float64), atol=0.005)
    assert phi[4] >= 0.05  # beyond the grid: its border's value, positive (a lower bound of the distance)

    # The limb's own SDF follows the pose: swinging the ball from beside the box into it starts the penetration.
    c = ball_beside_box()
    model = PenetrationModel.from_character(c, cell=0.02, dtype=torch.float64)
    motion = turn_joint(c, SPINE, [0.0, 0.9])
    phi = model.limb_sdf(skinning_transforms(motion.fk(), rest))
    assert (phi[0] > 0).all() and (phi[1] < 0).any()


def test_body_sdf_gradcheck():
    c = box_and_ball(ball_joint=SPINE)
    model = PenetrationModel.from_character(c, cell=0.03, dtype=torch.float64)
    motion = turn_joint(c, SPINE, [0.3])
    t = skinning_transforms(motion.fk(), c.skeleton.rest_pose())[0]
    g = torch.Generator().manual_seed(0)
    pts = (torch.rand(6, 3, generator=g, dtype=torch.float64) - 0.5) * torch.tensor([0.3, 0.4, 0.2],
                                                                                 dtype=torch.float64)
    pts = (pts + torch.tensor([0.0, 1.05, 0.0], dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: model.body_sdf(p, t), (pts,))
    tt = t.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: model.limb_sdf(x)[:5], (tt,))


def test_per_point_and_per_pose_sdf_agree_and_resume_from_their_weights():
    c = box_and_ball(ball_joint=ARM)
    model = PenetrationModel.from_character(c, cell=0.02, dtype=torch.float64)
    t = skinning_transforms(turn_joint(c, ARM, [0.0, 0.5, 1.2]).fk(), c.skeleton.rest_pose())  # (3, J, 3, 4)
    points = model.limb_vertices(t)[:, :40]  # (3, 40, 3)
    bones = t[:, model.bones].flatten(-2)  # (3, K, 12)
    phi, w = model.sdf_per_pose(points, bones)
    assert phi.shape == (3, 40) and w.shape == (3, 40, len(model.bones))
    assert torch.allclose(phi, model.body_sdf(points, t))
    each, w_each = model.sdf_at(points.reshape(-1, 3), bones[:, None].expand(-1, 40, -1, -1).reshape(120, -1, 12))
    assert torch.allclose(each.reshape(3, 40), phi) and torch.allclose(w_each.reshape(w.shape), w)
    # Resumed from its final weights with no further rounds, it lands on the same rest point.
    again, _ = model.sdf_per_pose(points, bones, iterations=0, weights=w)
    assert torch.allclose(again, phi)


def test_missing_labels_give_a_clear_error():
    no_limb = torso_only(box_and_ball())
    with pytest.raises(MissingPartsError, match="no vertices labelled as arm/hand"):
        body_and_limb_masks(no_limb)
    with pytest.raises(MissingPartsError, match="blob"):
        PenetrationModel.from_character(no_limb)


def test_penetration_model_is_built_once_per_character_content():
    from dataclasses import replace

    from core.character_library import load_character
    from core.geometry.penetration import penetration_model

    bob = load_character("Bob")
    first = penetration_model(bob)
    assert penetration_model(load_character("Bob")) is first  # same content, another object: kept
    moved = replace(bob, rest_vertices=bob.rest_vertices + [0.0, 0.01, 0.0])
    assert penetration_model(moved) is not first
