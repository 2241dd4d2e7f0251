import numpy as np
import torch

from core.semantics.skeletal import FigureProxy, SkeletalEncoder, hand_points, skeletal_features
from core.skeleton import CANONICAL_JOINTS, canonical_skeleton
from tests.synthetic import random_motion, tpose_offsets

J = {n: i for i, n in enumerate(CANONICAL_JOINTS)}


def _positions(frames: int = 12) -> torch.Tensor:
    sk = canonical_skeleton(tpose_offsets())
    return random_motion(sk, frames=frames).fk().positions


def test_embedding_is_scale_and_place_free_and_differentiable():
    p = _positions()
    proxy = FigureProxy.human(p[0].numpy())
    enc = SkeletalEncoder()
    e = enc.embed(p, proxy)
    assert e.shape == (12, 22 * 22 + 24 + 3)
    big = FigureProxy(*(2 * np.array([proxy.height, proxy.torso_radius, proxy.head_radius, proxy.hand_radius])))
    moved = 2 * p + torch.tensor([3.0, 0.0, -1.0], dtype=p.dtype)
    assert torch.allclose(enc.embed(moved, big), e, atol=1e-3)  # (the JDM keeps a 1e-4 regulariser on its diagonal)
    q = p.clone().requires_grad_(True)
    enc.embed(q, proxy).sum().backward()
    assert q.grad.abs().sum() > 0


def test_contacts_follow_the_hands():
    p = canonical_skeleton(tpose_offsets()).rest_pose().positions[None].repeat(2, 1, 1)
    proxy = FigureProxy.human(p[0].numpy())
    # Frame 1: both palms at the middle of the chest's front surface.
    chest = p[1, J["Spine2"]] + torch.tensor([0.0, 0.0, proxy.torso_radius + proxy.hand_radius], dtype=p.dtype)
    for side in ("Left", "Right"):
        palm = hand_points(p[1])[0 if side == "Left" else 1]
        p[1, J[f"{side}Hand"]] += chest - palm
        p[1, J[f"{side}ForeArm"]] += chest - palm
    f = skeletal_features(p, proxy)
    assert (f.contacts[0] < 0.05).all()  # T-pose: nothing touches
    assert (f.contacts[1] > 0.95).all()  # hands on the chest and on each other
    assert torch.allclose(f.gaps[1, :2], torch.zeros(2, dtype=p.dtype), atol=1e-6)
