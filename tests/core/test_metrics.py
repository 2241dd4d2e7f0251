import numpy as np
import torch

from core.metrics import acceleration, foot_contacts, foot_skate, jitter
from core.motion import FOOT_JOINTS
from core.skeleton import CANONICAL_JOINTS

FEET = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]


def test_jitter_is_zero_for_constant_velocity_and_exact_for_known_acceleration():
    t = np.arange(30)[:, None, None] / 30.0
    p = np.zeros((30, 22, 3)) + t * np.array([1.0, 0, 0])
    assert jitter(p, 30) < 1e-9
    p = np.zeros((30, 22, 3)) + 0.5 * 2.0 * t ** 2 * np.array([0, 1.0, 0])  # 2 m/s² everywhere
    assert abs(jitter(p, 30) - 2.0) < 1e-6
    p[5, 3] = np.nan  # undetected joints are skipped, not propagated
    assert np.isfinite(jitter(p, 30))


def test_foot_skate_counts_only_planted_feet():
    T = 20
    p = np.zeros((T, 22, 3))
    p[:, :, 1] = 1.0
    p[:, FEET, 1] = 0.0
    assert foot_contacts(p, height=1.7).all()
    assert foot_skate(p, 30, height=1.7) == 0.0
    p[:, FEET, 0] = np.arange(T)[:, None] * 0.01  # sliding 0.3 m/s while planted
    assert abs(foot_skate(p, 30, height=1.7) - 0.3) < 1e-9
    lifted = np.zeros((T, 4), bool)
    assert foot_skate(p, 30, contacts=lifted) == 0.0


def test_acceleration_is_the_same_on_arrays_and_tensors_and_differentiable():
    p = np.random.default_rng(0).normal(size=(12, 4, 3))
    a = acceleration(p, 30.0)
    assert a.shape == (10, 4, 3)
    assert np.allclose(acceleration(torch.as_tensor(p), 30.0).numpy(), a)
    assert np.allclose(a[3], (p[5] - 2 * p[4] + p[3]) * 900)
    x = torch.as_tensor(p[:5, :2], dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda q: acceleration(q, 24.0).norm(dim=-1), (x,))
