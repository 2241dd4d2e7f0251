"""The Motion type, and moving motions between any rig and the canonical T-pose 22-joint skeleton.

A rig's rest pose can be anything: a T-pose (Mixamo, CMU), an A-pose, or no pose at all (Bandai Namco's
joint-orient rig has every bone along its local X axis). :func:`to_canonical` re-expresses a motion relative
to the canonical T-pose (character facing +Z, Y up, arms along ±X), so local rotations of two canonical
motions mean the same thing and can be copied between characters.

How: every canonical joint k gets a constant frame ``F_k`` that maps T-pose directions onto the rig's rest
geometry (built by carrying the hips' frame down each chain with the smallest turn that lines the canonical
bone direction up with the rig's). Its world rotation at time t is then ``W_k(t) · Wrest_k⁻¹ · F_k``, a
small per-frame swing makes each bone point exactly at its child (which absorbs joints the canonical
topology skips), and local rotations follow. Bone directions survive exactly whatever the rig's rest.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from .kinematics import Pose, forward_kinematics
from .rotations import matrix_to_quat, quat_between, quat_make_continuous, quat_slerp, quat_to_matrix
from .skeleton import (CANONICAL_JOINTS, CANONICAL_PARENTS, CANONICAL_TPOSE_DIRECTIONS, FINGER_JOINTS,
                       FINGER_PARENTS, Skeleton, canonical_main_child, finger_offsets, finger_tpose_direction,
                       map_fingers,
                       canonical_skeleton, map_to_canonical)

__all__ = ["Motion", "to_canonical", "from_canonical", "canonical_rest", "canonical_fingers", "with_fingers",
           "FOOT_JOINTS"]

FOOT_JOINTS = ("LeftFoot", "LeftToeBase", "RightFoot", "RightToeBase")


@dataclass(eq=False)
class Motion:
    """Joint rotations over time on a skeleton.

    skeleton: the :class:`Skeleton` the motion plays on.
    rotations: ``(T, J, 4)`` local quaternions relative to the rest pose, sign-continuous over time.
    root_positions: ``(T, 3)`` world position of the root joint, metres.
    fps: frames per second.
    name: a label for reports and file names.
    """

    skeleton: Skeleton
    rotations: np.ndarray
    root_positions: np.ndarray
    fps: float
    name: str = ""

    def __post_init__(self) -> None:
        self.rotations = np.asarray(self.rotations, dtype=np.float64)
        self.root_positions = np.asarray(self.root_positions, dtype=np.float64)
        T, J = self.rotations.shape[:2] if self.rotations.ndim == 3 else (-1, -1)
        if self.rotations.shape != (T, self.skeleton.num_joints, 4):
            raise ValueError(f"rotations must be (T, {self.skeleton.num_joints}, 4), got {self.rotations.shape}")
        if self.root_positions.shape != (T, 3):
            raise ValueError(f"root_positions must be ({T}, 3), got {self.root_positions.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @classmethod
    def rest(cls, skeleton: Skeleton, frames: int = 1, fps: float = 30.0) -> "Motion":
        """The rig standing still in its rest pose for ``frames`` frames (root at its rest offset)."""
        return cls(skeleton, np.tile([1.0, 0, 0, 0], (frames, skeleton.num_joints, 1)),
                   np.tile(skeleton.offsets[0], (frames, 1)), fps)

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_frames / self.fps

    def fk(self, dtype: torch.dtype = torch.float64) -> Pose:
        """World transforms per frame: ``(T, J, 3)`` positions and ``(T, J, 3, 3)`` rotations."""
        sk = self.skeleton
        return forward_kinematics(sk.parents, torch.as_tensor(sk.offsets, dtype=dtype),
                                  torch.as_tensor(self.rotations, dtype=dtype),
                                  torch.as_tensor(self.root_positions, dtype=dtype),
                                  torch.as_tensor(sk.rest_rotations, dtype=dtype))

    def positions(self) -> np.ndarray:
        """``(T, J, 3)`` world joint positions, metres."""
        return self.fk().positions.numpy()

    def slice(self, start: int, stop: int | None = None) -> "Motion":
        """Frames ``[start, stop)``."""
        return replace(self, rotations=self.rotations[start:stop].copy(),
                       root_positions=self.root_positions[start:stop].copy())

    def every(self, step: int) -> "Motion":
        """Frames ``0, step, 2·step, …`` at ``fps / step``."""
        return replace(self, rotations=self.rotations[::step].copy(), root_positions=self.root_positions[::step].copy(),
                       fps=self.fps / step)

    def resample(self, fps: float) -> "Motion":
        """The same motion at another frame rate (slerp for rotations, linear for the root)."""
        if abs(fps - self.fps) < 1e-9 or self.num_frames < 2:
            return replace(self, fps=fps)
        n = max(1, int(round((self.num_frames - 1) * fps / self.fps)) + 1)
        src_t = np.arange(n) * self.fps / fps
        i0 = np.clip(np.floor(src_t).astype(int), 0, self.num_frames - 1)
        i1 = np.minimum(i0 + 1, self.num_frames - 1)
        w = torch.as_tensor(src_t - i0)[:, None]
        q = torch.as_tensor(self.rotations)
        rot = quat_slerp(q[i0], q[i1], w.expand(n, self.skeleton.num_joints))
        root = self.root_positions[i0] * (1 - w.numpy()) + self.root_positions[i1] * w.numpy()
        return replace(self, rotations=quat_make_continuous(rot).numpy(), root_positions=root, fps=fps)

    def __repr__(self) -> str:
        return f"Motion({self.name!r}, {self.num_frames} frames at {self.fps:g} fps, {self.skeleton!r})"


# ----------------------------------------------------------------------------------------------------------

ROOT_PLACEMENTS = ("origin", "in_place", "world")


def place_root(motion: Motion, placement: str = "origin") -> Motion:
    """The same motion with its root's horizontal path (x, z) placed for an animator; heights are untouched.

    * "origin": the path as captured, moved so the first frame's root stands over the origin (a pose estimate
      puts the hips wherever the camera saw them, metres away).
    * "in_place": also without the travel: the path minus its one-second moving average, so steps keep their sway
      and bounce but the character stays over the origin (Mixamo's "in place").
    * "world": the coordinates as they came.
    """
    if placement not in ROOT_PLACEMENTS:
        raise ValueError(f"root placement must be one of {', '.join(ROOT_PLACEMENTS)}, got {placement!r}")
    root = motion.root_positions.copy()
    if placement == "world" or motion.num_frames == 0:
        return replace(motion, root_positions=root)
    if placement == "in_place":
        half = min(max(1, int(round(motion.fps / 2))), motion.num_frames - 1)
        # Odd reflection about the end frames continues a steady walk through them, so the average follows the
        # travel to the last frame (edge padding left a walker sliding 0.36 m at the clip's ends).
        padded = np.pad(root[:, [0, 2]], ((half, half), (0, 0)), mode="reflect", reflect_type="odd")
        kernel = np.ones(2 * half + 1) / (2 * half + 1)
        travel = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)], axis=1)
        root[:, [0, 2]] -= travel
    root[:, [0, 2]] -= root[0, [0, 2]]
    return replace(motion, root_positions=root)


def _canonical_tracks(P: Tensor, indices: tuple[int, ...]) -> Tensor:
    """``(..., 22, 3)`` canonical joint positions from a rig's ``(..., J, 3)``; synthesised joints midway."""
    out: list[Tensor | None] = [P[..., i, :] if i >= 0 else None for i in indices]
    for k, i in enumerate(indices):
        if i < 0:
            child = CANONICAL_PARENTS.index(k)
            out[k] = 0.5 * (out[CANONICAL_PARENTS[k]] + out[child])  # type: ignore[operator]
    return torch.stack(out, dim=-2)  # type: ignore[arg-type]


def _tpose_frames(rest: Tensor) -> Tensor:
    """``(22, 3, 3)`` frames mapping T-pose directions onto a rest pose given as ``(22, 3)`` positions."""
    idx = {n: k for k, n in enumerate(CANONICAL_JOINTS)}
    up = rest[idx["Spine"]] - rest[idx["Hips"]]
    for name in ("Spine1", "Spine2", "Neck"):  # a first spine joint on top of the hips (CMU's LowerBack)
        if up.norm() > 1e-4:
            break
        up = rest[idx[name]] - rest[idx["Hips"]]
    left = rest[idx["LeftUpLeg"]] - rest[idx["RightUpLeg"]]
    y = up / up.norm().clamp_min(1e-9)
    x = left - (left @ y) * y
    x = x / x.norm().clamp_min(1e-9)
    frames = [torch.stack([x, y, torch.linalg.cross(x, y)], dim=-1)]
    for k in range(1, 22):
        parent = frames[CANONICAL_PARENTS[k]]
        c = canonical_main_child(k)
        bone = rest[c] - rest[k] if c is not None else None
        if bone is None or bone.norm() < 1e-6:
            frames.append(parent)
            continue
        d = parent @ torch.tensor(CANONICAL_TPOSE_DIRECTIONS[CANONICAL_JOINTS[k]], dtype=rest.dtype)
        frames.append(quat_to_matrix(quat_between(d, bone)) @ parent)
    return torch.stack(frames)


def _aim_at_children(W: Tensor, P: Tensor, offsets: Tensor) -> Tensor:
    """Swing each single-chain joint's ``(T, 22, 3, 3)`` rotation so its bone points exactly at its child."""
    W = W.clone()
    for k in range(22):
        c = canonical_main_child(k)
        if c is None or CANONICAL_PARENTS.count(k) > 1:
            continue  # leaves, and joints with several children (a swing towards one would pull the others)
        if offsets[c].norm() < 1e-6:
            continue
        current = W[:, k] @ offsets[c]
        swing = quat_to_matrix(quat_between(current, P[:, c] - P[:, k]))
        W[:, k] = swing @ W[:, k]
    return W


def _ground_offset(positions: Tensor) -> float:
    """Height of the floor under a clip: a low percentile of the lowest foot joint (robust to a stray frame)."""
    feet = [CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS]
    lowest = positions[:, feet, 1].min(dim=1).values
    return float(torch.quantile(lowest, 0.05))


def to_canonical(motion: Motion) -> Motion:
    """The motion on the canonical 22-joint T-pose skeleton with the rig's own proportions.

    Raises:
        SkeletonMappingError: when the rig's joints cannot be mapped (the message names the missing ones).
    """
    sk = motion.skeleton
    mapping = map_to_canonical(sk)
    idx = mapping.indices
    rest = sk.rest_pose()
    pose = motion.fk()
    rest_tracks = _canonical_tracks(rest.positions, idx)
    frames = _tpose_frames(rest_tracks)
    offsets = torch.zeros(22, 3, dtype=torch.float64)
    for k in range(1, 22):
        p = CANONICAL_PARENTS[k]
        offsets[k] = frames[p].T @ (rest_tracks[k] - rest_tracks[p])

    P = _canonical_tracks(pose.positions, idx)  # (T, 22, 3)
    W: list[Tensor] = []
    for k, i in enumerate(idx):
        if i < 0:
            W.append(W[CANONICAL_PARENTS[k]])
        else:
            W.append(pose.rotations[:, i] @ rest.rotations[i].T @ frames[k])
    Wc = _aim_at_children(torch.stack(W, dim=1), P, offsets)
    parents = torch.tensor([max(p, 0) for p in CANONICAL_PARENTS])
    local = Wc[:, parents].transpose(-1, -2) @ Wc
    local[:, 0] = Wc[:, 0]
    rotations = quat_make_continuous(matrix_to_quat(local), dim=0)

    # Floor = the clip's foot-joint contact level: the lowest foot joint touches y = 0 in contact and in the
    # rest pose, whatever the source file's own floor height was.
    ground = _ground_offset(P)
    offsets[0] = 0.0
    tmp = forward_kinematics(CANONICAL_PARENTS, offsets, torch.eye(3, dtype=torch.float64).expand(22, 3, 3),
                             torch.zeros(3, dtype=torch.float64))
    offsets[0, 1] = -float(tmp.positions[[CANONICAL_JOINTS.index(n) for n in FOOT_JOINTS], 1].min())
    root = P[:, 0] - P.new_tensor([0.0, ground, 0.0])
    return Motion(canonical_skeleton(offsets.numpy()), rotations.numpy(), root.numpy(), motion.fps, motion.name)


def canonical_rest(skeleton: Skeleton) -> Skeleton:
    """The canonical 22-joint T-pose skeleton with a rig's proportions (from its rest pose)."""
    return to_canonical(Motion.rest(skeleton)).skeleton


def from_canonical(motion: Motion, skeleton: Skeleton) -> Motion:
    """Play a canonical motion on a full rig: mapped joints follow it, the others keep their rest pose.

    The rig's proportions are its own; the root path is used as given (scale it first if needed).
    """
    if motion.skeleton.names != CANONICAL_JOINTS:
        raise ValueError("from_canonical needs a motion on the canonical 22-joint skeleton (see to_canonical)")
    idx = map_to_canonical(skeleton).indices
    rest = skeleton.rest_pose()
    frames = _tpose_frames(_canonical_tracks(rest.positions, idx))
    Wc = motion.fk().rotations  # (T, 22, 3, 3), identity at the canonical rest
    T, J = motion.num_frames, skeleton.num_joints
    source_of = {i: k for k, i in enumerate(idx) if i >= 0}
    world: list[Tensor] = []
    local = torch.empty(T, J, 3, 3, dtype=torch.float64)
    for j, p in enumerate(skeleton.parents):
        rest_local = rest.rotations[j] if p < 0 else rest.rotations[p].T @ rest.rotations[j]
        if j in source_of:
            k = source_of[j]
            Wj = Wc[:, k] @ frames[k].T @ rest.rotations[j]
        else:
            Wj = (world[p] if p >= 0 else torch.eye(3, dtype=torch.float64)) @ rest_local
        world.append(Wj.expand(T, 3, 3))
        parent_world = world[p] if p >= 0 else torch.eye(3, dtype=torch.float64).expand(T, 3, 3)
        # Local relative to rest: world = parent_world · R_rest · L  ⇒  L = R_restᵀ · parent_worldᵀ · world.
        local[:, j] = quat_to_matrix(torch.as_tensor(skeleton.rest_rotations[j])).T @ parent_world.transpose(-1, -2) @ world[j]
    rotations = quat_make_continuous(matrix_to_quat(local), dim=0)
    # Move the rig's root so its hips land where the canonical hips are.
    hips = idx[0]
    tmp = Motion(skeleton, rotations.numpy(), np.zeros((T, 3)), motion.fps)
    hips_at_zero = tmp.fk().positions[:, hips]
    root = torch.as_tensor(motion.root_positions) - hips_at_zero
    return Motion(skeleton, rotations.numpy(), root.numpy(), motion.fps, motion.name)


# ----------------------------------------------------------------------------------------------------------
# Fingers: they bypass the canonical 22 joints (and the network); their rotations copy across rigs directly.
# ----------------------------------------------------------------------------------------------------------

def _frame_of(a: Tensor, b: Tensor) -> Tensor:
    """Orthonormal frame ``(3, 3)``: columns a, b made perpendicular to a, a x b."""
    a = a / a.norm().clamp_min(1e-12)
    b = b - (b @ a) * a
    b = b / b.norm().clamp_min(1e-12)
    return torch.stack([a, b, torch.linalg.cross(a, b)], dim=-1)


def _palm_frame(rest: Pose, fingers: dict[int, int], hand: int, side: int) -> Tensor | None:
    """The hand's canonical frame ``(3, 3)`` from the rest positions of its finger bases (long axis to the middle
    knuckle, across from the little finger to the index), or None when the rig lacks them.

    The palm fixes the hand's twist from the rig's geometry alone: carried down the arm with smallest turns, the
    hand's frame depends on how the rig's rest pose holds the arm (a BVH written from a joint-orient rig has every
    bone along Y in its rest), and its twist turns the fingers' hinge axes.
    """
    base = {name: 15 * side + 3 * FINGER_JOINTS[15 * side:15 * side + 15:3].index(
        f"{'Left' if side == 0 else 'Right'}Hand{name}1") for name in ("Index", "Middle", "Ring", "Pinky")}
    across = [(a, b) for a, b in (("Index", "Pinky"), ("Index", "Ring"), ("Middle", "Pinky")) if
              base[a] in fingers and base[b] in fingers]
    if "Middle" not in {n for n in base if base[n] in fingers} or not across:
        return None
    can = torch.as_tensor(finger_offsets(1.0), dtype=rest.positions.dtype)  # bases are the hand's children
    a, b = across[0]
    P = rest.positions
    rig = _frame_of(P[fingers[base["Middle"]]] - P[hand], P[fingers[base[a]]] - P[fingers[base[b]]])
    canonical = _frame_of(can[base["Middle"]], can[base[a]] - can[base[b]])
    return rig @ canonical.T


def _finger_frames(skeleton: Skeleton, rest: Pose) -> tuple[dict[int, int], Tensor, dict[int, Tensor]]:
    """The rig's fingers by name, its canonical T-pose frames for the 22 joints ``(22, 3, 3)`` (the hands' from
    their palms, :func:`_palm_frame`, where the rig has the finger bases) and for each mapped finger
    ``{n: (3, 3)}``, built like :func:`_tpose_frames`: the parent's frame carried down with the smallest turn that
    lines the canonical T-pose finger direction up with the rig's rest bone."""
    fingers = map_fingers(skeleton)
    if not fingers:
        return fingers, torch.empty(0), {}
    idx = map_to_canonical(skeleton, check_hierarchy=False).indices
    frames22 = _tpose_frames(_canonical_tracks(rest.positions, idx)).clone()
    for side, name in enumerate(("LeftHand", "RightHand")):
        k = CANONICAL_JOINTS.index(name)
        palm = _palm_frame(rest, fingers, idx[k], side)
        if palm is not None:
            frames22[k] = palm
    frames: dict[int, Tensor] = {}
    for n in range(len(FINGER_JOINTS)):
        p = FINGER_PARENTS[n]
        parent = frames22[p] if p < 22 else frames[p - 22]
        j = fingers.get(n)
        if j is None:
            frames[n] = parent
            continue
        nxt = fingers.get(n + 1) if FINGER_JOINTS[n][-1] != "3" else None
        kids = skeleton.children(j)
        child = nxt if nxt is not None else (kids[0] if kids else None)
        bone = rest.positions[child] - rest.positions[j] if child is not None else None
        if bone is None or bone.norm() < 1e-6:
            frames[n] = parent
            continue
        d = parent @ torch.as_tensor(finger_tpose_direction(FINGER_JOINTS[n]), dtype=rest.positions.dtype)
        frames[n] = quat_to_matrix(quat_between(d, bone)) @ parent
    return fingers, frames22, frames


def _hand_canonical(world: Tensor, rest: Pose, idx: tuple[int, ...], frames22: Tensor, n: int) -> Tensor:
    """Canonical world rotation ``(T, 3, 3)`` of the hand that finger ``n`` hangs from."""
    k = CANONICAL_JOINTS.index("LeftHand" if n < 15 else "RightHand")
    return world[:, idx[k]] @ rest.rotations[idx[k]].T @ frames22[k]


def canonical_fingers(motion: Motion) -> np.ndarray | None:
    """``(T, 30, 4)`` local rotations of :data:`~core.skeleton.FINGER_JOINTS` relative to the canonical T-pose
    hand (identity for fingers the rig lacks), or None when the rig has no finger joints.

    On a canonical skeleton with hands (:func:`~core.skeleton.canonical_skeleton` with 52 offsets) these are the
    motion's own finger rotations; on any other rig they are re-expressed through its rest pose, so they copy
    across rigs whatever their finger bones' rest orientations (see :func:`with_fingers`).
    """
    sk = motion.skeleton
    rest = sk.rest_pose()
    fingers, frames22, frames = _finger_frames(sk, rest)
    if not fingers:
        return None
    idx = map_to_canonical(sk, check_hierarchy=False).indices
    world = motion.fk().rotations
    Wc: dict[int, Tensor] = {}
    T = motion.num_frames
    local = torch.eye(3, dtype=torch.float64).expand(T, 30, 3, 3).clone()
    for n in range(30):
        p = FINGER_PARENTS[n]
        parent = _hand_canonical(world, rest, idx, frames22, n) if p < 22 else Wc[p - 22]
        j = fingers.get(n)
        Wc[n] = parent if j is None else world[:, j] @ rest.rotations[j].T @ frames[n]
        local[:, n] = parent.transpose(-1, -2) @ Wc[n]
    return quat_make_continuous(matrix_to_quat(local), dim=0).numpy()


def with_fingers(motion: Motion, fingers: np.ndarray | None) -> Motion:
    """The motion with its rig's finger joints set from canonical finger rotations ``(T, 30, 4)`` (see
    :func:`canonical_fingers`); the rest of the rig is untouched. A rig without fingers, or ``fingers=None``,
    returns the motion as it is."""
    if fingers is None:
        return motion
    fingers = np.asarray(fingers, dtype=np.float64)
    if fingers.shape != (motion.num_frames, 30, 4):
        raise ValueError(f"fingers must be ({motion.num_frames}, 30, 4), got {fingers.shape}")
    sk = motion.skeleton
    rest = sk.rest_pose()
    mapped, frames22, frames = _finger_frames(sk, rest)
    if not mapped:
        return motion
    idx = map_to_canonical(sk, check_hierarchy=False).indices
    rig_finger = {j: n for n, j in mapped.items()}
    L = quat_to_matrix(torch.as_tensor(motion.rotations))
    R = quat_to_matrix(torch.as_tensor(fingers))
    rest_local = quat_to_matrix(torch.as_tensor(sk.rest_rotations))
    world0 = motion.fk().rotations  # the hands are no fingers' descendants: their world rotations stay
    Wc: list[Tensor] = []
    for n in range(30):
        p = FINGER_PARENTS[n]
        Wc.append((_hand_canonical(world0, rest, idx, frames22, n) if p < 22 else Wc[p - 22]) @ R[:, n])
    eye = torch.eye(3, dtype=torch.float64).expand(motion.num_frames, 3, 3)
    world: list[Tensor] = []
    out = L.clone()
    for j, p in enumerate(sk.parents):
        parent_world = world[p] if p >= 0 else eye
        if j in rig_finger:
            n = rig_finger[j]
            Wj = Wc[n] @ frames[n].T @ rest.rotations[j]
            out[:, j] = rest_local[j].T @ parent_world.transpose(-1, -2) @ Wj
        else:
            Wj = parent_world @ rest_local[j] @ L[:, j]
        world.append(Wj)
    rotations = quat_make_continuous(matrix_to_quat(out), dim=0).numpy()
    return replace(motion, rotations=rotations)
