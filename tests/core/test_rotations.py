import math

import pytest
import torch

from core import rotations as R


def _random_quats(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return R.quat_normalize(torch.randn(n, 4, generator=g, dtype=torch.float64))


def test_quat_matrix_round_trip_including_half_turns():
    q = _random_quats(500)
    half_turns = torch.tensor([[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0.6, 0.8, 0]], dtype=torch.float64)
    q = torch.cat([q, half_turns])
    back = R.matrix_to_quat(R.quat_to_matrix(q))
    same = torch.minimum((back - q).abs().amax(-1), (back + q).abs().amax(-1))
    assert same.max() < 1e-9


def test_matrix_is_rotation_and_matches_quat_rotate():
    q = _random_quats(100)
    m = R.quat_to_matrix(q)
    assert torch.allclose(m @ m.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(100, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(m), torch.ones(100, dtype=torch.float64))
    v = torch.randn(100, 3, dtype=torch.float64)
    assert torch.allclose((m @ v[..., None])[..., 0], R.quat_rotate(q, v), atol=1e-12)


def test_known_rotation_convention():
    # 90 degrees about +Z takes +X to +Y (right-handed, column vectors, (w, x, y, z)).
    q = torch.tensor([math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], dtype=torch.float64)
    assert torch.allclose(R.quat_rotate(q, torch.tensor([1.0, 0, 0], dtype=torch.float64)),
                          torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)


def test_multiply_composes_like_matrices():
    a, b = _random_quats(50, 1), _random_quats(50, 2)
    assert torch.allclose(R.quat_to_matrix(R.quat_multiply(a, b)), R.quat_to_matrix(a) @ R.quat_to_matrix(b), atol=1e-12)
    assert torch.allclose(R.quat_multiply(a, R.quat_conjugate(a)), R.quat_identity(50, dtype=torch.float64), atol=1e-12)


def test_6d_round_trip_and_projection():
    m = R.quat_to_matrix(_random_quats(100))
    assert torch.allclose(R.rot6d_to_matrix(R.matrix_to_rot6d(m)), m, atol=1e-12)
    noisy = torch.randn(100, 6, dtype=torch.float64)
    out = R.rot6d_to_matrix(noisy)
    assert torch.allclose(out @ out.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(100, 3, 3), atol=1e-12)


def test_quat_between_including_opposite():
    u = torch.randn(200, 3, dtype=torch.float64)
    v = torch.randn(200, 3, dtype=torch.float64)
    v[:3] = -u[:3]
    q = R.quat_between(u, v)
    got = R.quat_rotate(q, torch.nn.functional.normalize(u, dim=-1))
    assert torch.allclose(got, torch.nn.functional.normalize(v, dim=-1), atol=1e-9)


def test_slerp_endpoints_and_midpoint():
    a, b = _random_quats(20, 3), _random_quats(20, 4)
    assert torch.allclose(R.quat_slerp(a, b, 0.0), a, atol=1e-9)
    end = R.quat_slerp(a, b, 1.0)
    assert torch.minimum((end - b).abs().amax(-1), (end + b).abs().amax(-1)).max() < 1e-9
    mid = R.quat_slerp(a, b, 0.5)
    d1 = (R.quat_multiply(R.quat_conjugate(a), mid)[..., 0].abs().clamp(max=1)).acos()
    d2 = (R.quat_multiply(R.quat_conjugate(mid), b)[..., 0].abs().clamp(max=1)).acos()
    assert torch.allclose(d1, d2, atol=1e-9)


def test_make_continuous_removes_sign_flips():
    q = _random_quats(1, 5).expand(10, 1, 4).clone()
    q[3::2] *= -1
    out = R.quat_make_continuous(q)
    assert ((out[1:] * out[:-1]).sum(-1) > 0).all()
    assert torch.allclose(out.abs(), q.abs())


@pytest.mark.parametrize("fn,make", [
    (R.quat_to_matrix, lambda: _random_quats(4)),
    (R.matrix_to_quat, lambda: R.quat_to_matrix(_random_quats(4))),
    (R.rot6d_to_matrix, lambda: torch.randn(4, 6, dtype=torch.float64)),
    (R.quat_multiply, None),
    (R.quat_rotate, None),
])
def test_gradients(fn, make):
    if fn is R.quat_multiply:
        args = (_random_quats(4, 7).requires_grad_(), _random_quats(4, 8).requires_grad_())
    elif fn is R.quat_rotate:
        args = (_random_quats(4, 9).requires_grad_(), torch.randn(4, 3, dtype=torch.float64, requires_grad=True))
    else:
        args = (make().requires_grad_(),)
    assert torch.autograd.gradcheck(fn, args)


def test_bad_shapes_are_reported():
    with pytest.raises(ValueError, match="last dimension 4"):
        R.quat_to_matrix(torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 3\)"):
        R.matrix_to_quat(torch.zeros(4, 4))
