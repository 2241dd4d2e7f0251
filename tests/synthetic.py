"""Small motions and skeletons the tests build themselves (no shared data needed)."""
from __future__ import annotations

import numpy as np
import torch

from core.motion import Motion
from core.rotations import quat_multiply, quat_normalize
from core.skeleton import CANONICAL_JOINTS, Skeleton


def tpose_offsets(height: float = 1.7, arm: float = 1.0, leg: float = 1.0) -> np.ndarray:
    """``(22, 3)`` canonical T-pose offsets for a person of roughly ``height`` metres."""
    s = height / 1.7
    o = {
        "Hips": (0, 0.95 * leg, 0), "Spine": (0, 0.1, 0), "Spine1": (0, 0.12, 0), "Spine2": (0, 0.12, 0),
        "Neck": (0, 0.14, 0), "Head": (0, 0.1, 0),
        "LeftShoulder": (0.04, 0.1, 0), "LeftArm": (0.12, 0, 0), "LeftForeArm": (0.27 * arm, 0, 0),
        "LeftHand": (0.25 * arm, 0, 0), "LeftUpLeg": (0.09, -0.05, 0), "LeftLeg": (0, -0.43 * leg, 0),
        "LeftFoot": (0, -0.42 * leg, 0), "LeftToeBase": (0, -0.05, 0.13),
    }
    out = np.zeros((22, 3))
    for k, name in enumerate(CANONICAL_JOINTS):
        mirror = name.startswith("Right")
        x, y, z = o[name.replace("Right", "Left")]
        out[k] = (-x if mirror else x, y, z)
    out[1:] *= s
    out[0] = (0, out[0][1] * s + 0.0, 0)
    return out


def random_motion(skeleton: Skeleton, frames: int = 20, fps: float = 30.0, scale: float = 0.4, seed: int = 0) -> Motion:
    """A smooth random motion: joint rotations wander up to about ``scale`` radians."""
    g = torch.Generator().manual_seed(seed)
    J = skeleton.num_joints
    t = torch.linspace(0, 1, frames, dtype=torch.float64)[:, None, None]
    a, b = torch.randn(2, 1, J, 3, generator=g, dtype=torch.float64) * scale
    axis_angle = a * torch.sin(3 * t) + b * t
    angle = axis_angle.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    q = torch.cat([torch.cos(angle / 2), torch.sin(angle / 2) * axis_angle / angle], -1)
    root = torch.stack([torch.sin(t[:, 0, 0]), 0 * t[:, 0, 0], t[:, 0, 0]], -1) + torch.as_tensor(skeleton.offsets[0])
    return Motion(skeleton, q.numpy(), root.numpy(), fps, "random")


def reoriented_rig(skeleton: Skeleton, seed: int = 1) -> tuple[Skeleton, np.ndarray]:
    """The same figure as a joint-orient rig: every joint gets a random rest orientation.

    Returns the new skeleton and the ``(J, 4)`` rest world rotations applied, for converting motions.
    """
    g = torch.Generator().manual_seed(seed)
    J = skeleton.num_joints
    world = quat_normalize(torch.randn(J, 4, generator=g, dtype=torch.float64))
    rest = skeleton.rest_pose()
    parents = skeleton.parents
    rest_rot = torch.empty(J, 4, dtype=torch.float64)
    offsets = torch.as_tensor(skeleton.offsets).clone()
    from core.rotations import quat_conjugate, quat_rotate
    for j, p in enumerate(parents):
        parent_world = world[p] if p >= 0 else torch.tensor([1.0, 0, 0, 0], dtype=torch.float64)
        rest_rot[j] = quat_multiply(quat_conjugate(parent_world), world[j])
        if p >= 0:
            offsets[j] = quat_rotate(quat_conjugate(parent_world), rest.positions[j] - rest.positions[p])
    return Skeleton(skeleton.names, parents, offsets.numpy(), rest_rot.numpy()), world.numpy()


def first_frames(src, frames: int) -> tuple[list[np.ndarray], float]:
    """Up to ``frames`` RGB frames from the start of the video ``src`` (a test's own clip), and its frame rate."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    out = []
    while len(out) < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return out, fps


def two_people_video(src, out, frames: int = 45):
    """A 1280x720 clip with two people from ``src`` (the sample clip: one person, centred, on a floor): on the
    right, the person as filmed; on the left, the same person mirrored at 70 % size (so they move differently
    and are not the largest). Returns ``out``. Automatic choice: person 2 (right); person 1 is the small one."""
    import cv2

    from core.render.video import write_mp4

    read, fps = first_frames(src, frames)
    composed = []
    for rgb in read:
        f = cv2.resize(rgb, (1280, 720))
        person = f[:, 320:960]  # the centred person with some floor around them
        small = cv2.resize(np.ascontiguousarray(person[:, ::-1]), (448, 504), interpolation=cv2.INTER_AREA)
        empty = f[:, :320]  # the scene's empty left side (the person stands in the middle), twice as background
        left = np.concatenate([empty, empty[:, ::-1]], axis=1)
        left[720 - 504 - 60:720 - 60, 96:96 + 448] = small
        composed.append(np.concatenate([left, person], axis=1))
    write_mp4(composed, out, fps=fps)
    return out
