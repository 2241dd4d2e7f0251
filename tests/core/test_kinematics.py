import pytest
import torch

from core.kinematics import dense_skin_weights, forward_kinematics, linear_blend_skinning, skinning_transforms
from core.rotations import quat_identity, quat_normalize
from core.skeleton import CANONICAL_PARENTS

from ..synthetic import tpose_offsets


def _chain():
    parents = [-1, 0, 1]
    offsets = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 0, 0]], dtype=torch.float64)
    return parents, offsets


def test_fk_known_chain():
    parents, offsets = _chain()
    q = quat_identity(3, dtype=torch.float64)
    q[1] = torch.tensor([2 ** -0.5, 0, 0, 2 ** -0.5])  # 90 deg about Z at the elbow
    pose = forward_kinematics(parents, offsets, q, torch.tensor([0.0, 0, 0], dtype=torch.float64))
    expected = torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0]], dtype=torch.float64)
    assert torch.allclose(pose.positions, expected, atol=1e-12)


def test_fk_rest_rotations_equal_baked_rotations():
    parents, offsets = _chain()
    rest = quat_normalize(torch.randn(3, 4, dtype=torch.float64))
    q = quat_normalize(torch.randn(5, 3, 4, dtype=torch.float64))
    root = torch.randn(5, 3, dtype=torch.float64)
    from core.rotations import quat_multiply
    a = forward_kinematics(parents, offsets, q, root, rest)
    b = forward_kinematics(parents, offsets, quat_multiply(rest.expand(5, 3, 4), q), root)
    assert torch.allclose(a.positions, b.positions, atol=1e-12)


def test_fk_batched_and_gradcheck():
    offsets = torch.as_tensor(tpose_offsets(), dtype=torch.float64)
    q = quat_normalize(torch.randn(2, 4, 22, 4, dtype=torch.float64)).requires_grad_()
    root = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    pose = forward_kinematics(CANONICAL_PARENTS, offsets, q, root)
    assert pose.positions.shape == (2, 4, 22, 3) and pose.rotations.shape == (2, 4, 22, 3, 3)
    assert torch.autograd.gradcheck(lambda a, b: forward_kinematics(CANONICAL_PARENTS, offsets, a, b).positions,
                                    (q[:1, :2], root[:1, :2]))


def test_lbs_identity_is_rest_and_rigid_bone_moves_rigidly():
    parents, offsets = _chain()
    rest = forward_kinematics(parents, offsets, quat_identity(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    verts = torch.tensor([[0.5, 0.1, 0], [1.5, -0.1, 0], [2.2, 0, 0.1]], dtype=torch.float64)
    w = dense_skin_weights(torch.tensor([[0, 1, 2, 0], [1, 0, 2, 0], [2, 0, 1, 0]]),
                           torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.float64), 3)
    same = linear_blend_skinning(verts, w, skinning_transforms(rest, rest))
    assert torch.allclose(same, verts, atol=1e-12)
    q = quat_identity(3, dtype=torch.float64)
    q[1] = torch.tensor([2 ** -0.5, 0, 0, 2 ** -0.5])
    posed = forward_kinematics(parents, offsets, q, torch.zeros(3, dtype=torch.float64))
    out = linear_blend_skinning(verts, w, skinning_transforms(posed, rest))
    assert torch.allclose(out[0], verts[0])  # on the unrotated bone
    assert torch.allclose(out[1], torch.tensor([1.1, 0.5, 0], dtype=torch.float64), atol=1e-12)


def test_lbs_gradcheck():
    parents, offsets = _chain()
    rest = forward_kinematics(parents, offsets, quat_identity(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    verts = torch.randn(6, 3, dtype=torch.float64)
    w = torch.softmax(torch.randn(6, 3, dtype=torch.float64), -1)

    def skin(q):
        pose = forward_kinematics(parents, offsets, q, torch.zeros(3, dtype=torch.float64))
        return linear_blend_skinning(verts, w, skinning_transforms(pose, rest))

    q = quat_normalize(torch.randn(2, 3, 4, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(skin, (q,))


def test_lbs_per_vertex_gathered_bones_equal_the_shared_layout():
    torch.manual_seed(0)
    parents, offsets = _chain()
    rest = forward_kinematics(parents, offsets, quat_identity(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    pose = forward_kinematics(parents, offsets, quat_normalize(torch.randn(4, 3, 4, dtype=torch.float64)),
                              torch.zeros(3, dtype=torch.float64))
    transforms = skinning_transforms(pose, rest)  # (4, 3, 3, 4)
    verts = torch.randn(5, 3, dtype=torch.float64)
    top = torch.tensor([[0, 1], [1, 2], [2, 0], [0, 2], [1, 0]])
    top_w = torch.softmax(torch.randn(5, 2, dtype=torch.float64), -1)
    shared = linear_blend_skinning(verts, dense_skin_weights(top, top_w, 3), transforms)  # (4, 5, 3)
    frame = torch.tensor([3, 0, 2, 2, 1])  # one (frame, vertex) pair each
    each = linear_blend_skinning(verts, top_w, transforms[frame[:, None], top], per_vertex=True)
    assert each.shape == (5, 3) and torch.allclose(each, shared[frame, torch.arange(5)], atol=1e-12)
    with pytest.raises(ValueError, match="per-vertex"):
        linear_blend_skinning(verts, top_w[:, :1], transforms[frame[:, None], top], per_vertex=True)
    with pytest.raises(ValueError, match="weights must be"):
        linear_blend_skinning(verts, top_w, transforms)
