"""The skeletal semantic supervisor: what a pose *means* for the hands, from joint positions alone.

Used automatically when no vision-language model weights are present (every machine without a BLIP-2
checkpoint). Per frame, from the canonical 22 joints ``(T, 22, 3)`` it builds:

* the joint distance matrix with each row divided by its L1 norm (the skeleton-level semantics of R2ET and
  SMT's stage I; scale-free);
* each hand relative to the head, the chest (Spine2), the hips and the other hand, in the body's own frame
  (x = the figure's left, y = up, z = forward) and in figure heights;
* soft contacts: each hand with the body (torso or head), and the hands with each other.

Contacts need surfaces, not joints: a :class:`FigureProxy` gives them. For a bare skeleton (a BVH source, a video
person) it is a human-proportioned capsule body (:func:`source_proxy`); a character's has its mesh's height and
hand size (:func:`character_proxy`), and the optimiser passes the distance of the hand's mesh to its body mesh
(``body_gap``) instead of the capsules', so a hand resting on a round belly is "touching" there too.

A hand's *point* is its palm centre: the wrist carried on along the forearm by 35 % of the forearm's length
(the canonical skeleton ends at the wrist).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..character import Character
from ..geometry.mesh import farthest_points
from ..motion import Motion, _canonical_tracks, canonical_rest
from ..retarget.losses import normalized_jdm
from ..skeleton import CANONICAL_JOINTS, map_to_canonical

__all__ = ["FigureProxy", "SkeletalFeatures", "SkeletalEncoder", "hand_points", "skeletal_features",
           "contact_tolerance", "HAND_REACH", "character_proxy", "source_proxy", "hand_vertex_samples"]

_J = {n: i for i, n in enumerate(CANONICAL_JOINTS)}
HAND_REACH = 0.35  # palm centre beyond the wrist, as a fraction of the forearm's length
_TORSO_CHAIN = [_J[n] for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck")]
_FEET = [_J[n] for n in ("LeftFoot", "LeftToeBase", "RightFoot", "RightToeBase")]


def contact_tolerance(height: float) -> float:
    """Gap below which two surfaces count as touching: 3 % of the figure's height (5 cm on a 1.7 m person)."""
    return 0.03 * height


@dataclass(frozen=True)
class FigureProxy:
    """Sizes of a figure that turn joints into touchable surfaces, metres.

    height: head-top to floor. torso_radius: of the capsule around Hips→Spine→…→Neck. head_radius: of the
    sphere around the head's centre (the Head joint carried on along Neck→Head by the radius). hand_radius:
    of the sphere around each hand point.
    """

    height: float
    torso_radius: float
    head_radius: float
    hand_radius: float

    @classmethod
    def human(cls, positions: np.ndarray) -> "FigureProxy":
        """Human proportions for a bare skeleton from its ``(22, 3)`` rest joint positions.

        The stature is the Head joint's height above the lowest foot joint over 0.9 (the Head joint sits at
        the skull's base); the radii are adult averages relative to it.
        """
        p = np.asarray(positions, dtype=np.float64)
        height = float(p[_J["Head"], 1] - p[_FEET, 1].min()) / 0.9
        return cls(height, torso_radius=0.075 * height, head_radius=0.06 * height, hand_radius=0.025 * height)


@dataclass
class SkeletalFeatures:
    """Per-frame skeletal semantics.

    jdm: ``(T, 22, 22)`` row-normalised joint distance matrix.
    hands: ``(T, 2, 4, 3)`` left/right hand point minus head, chest, hips, other hand, in the body frame, heights.
    gaps: ``(T, 3)`` surface gaps (metres): left hand–body, right hand–body, hand–hand (negative = overlap).
    contacts: ``(T, 3)`` soft contacts in [0, 1] for the same pairs.
    """

    jdm: Tensor
    hands: Tensor
    gaps: Tensor
    contacts: Tensor


def hand_points(positions: Tensor) -> Tensor:
    """``(..., 2, 3)`` left and right palm centres from ``(..., 22, 3)`` canonical joint positions."""
    out = []
    for side in ("Left", "Right"):
        wrist, elbow = positions[..., _J[f"{side}Hand"], :], positions[..., _J[f"{side}ForeArm"], :]
        out.append(wrist + HAND_REACH * (wrist - elbow))
    return torch.stack(out, dim=-2)


def _segment_distance(p: Tensor, a: Tensor, b: Tensor) -> Tensor:
    d = b - a
    t = (((p - a) * d).sum(-1) / (d * d).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    return (p - a - t[..., None] * d).norm(dim=-1)


def _body_frame(positions: Tensor) -> Tensor:
    """``(..., 3, 3)`` columns = the figure's left, up, forward (yaw only, from the hip joints)."""
    left = positions[..., _J["LeftUpLeg"], :] - positions[..., _J["RightUpLeg"], :]
    up = torch.zeros_like(left)
    up[..., 1] = 1
    left = left - (left * up).sum(-1, keepdim=True) * up
    left = torch.nn.functional.normalize(left, dim=-1, eps=1e-9)
    return torch.stack([left, up, torch.linalg.cross(left, up, dim=-1)], dim=-1)


def proxy_body_gaps(positions: Tensor, proxy: FigureProxy) -> Tensor:
    """``(..., 2)`` gap between each hand's sphere and the capsule torso or the head sphere, metres."""
    hands = hand_points(positions)
    chain = positions[..., _TORSO_CHAIN, :]
    torso = torch.stack([_segment_distance(hands, chain[..., k:k + 1, :], chain[..., k + 1:k + 2, :])
                         for k in range(len(_TORSO_CHAIN) - 1)], dim=-1).amin(-1) - proxy.torso_radius
    neck, head = positions[..., _J["Neck"], :], positions[..., _J["Head"], :]
    centre = head + proxy.head_radius * torch.nn.functional.normalize(head - neck, dim=-1, eps=1e-9)
    head_gap = (hands - centre[..., None, :]).norm(dim=-1) - proxy.head_radius
    return torch.minimum(torso, head_gap) - proxy.hand_radius


def skeletal_features(positions: Tensor, proxy: FigureProxy, body_gap: Tensor | None = None) -> SkeletalFeatures:
    """Skeletal semantics of ``(T, 22, 3)`` canonical joint positions (differentiable).

    Args:
        proxy: the figure's sizes (hand radius, height; torso and head radii when ``body_gap`` is None).
        body_gap: optional ``(T, 2)`` measured gap of each hand to the body (e.g. from the mesh), metres.
    """
    if positions.shape[-2:] != (22, 3):
        raise ValueError(f"positions must be (T, 22, 3) canonical joints, got {tuple(positions.shape)}")
    hands = hand_points(positions)  # (T, 2, 3)
    refs = torch.stack([
        positions[..., _J["Head"], :], positions[..., _J["Spine2"], :], positions[..., _J["Hips"], :]], dim=-2)
    rel = torch.cat([hands[..., :, None, :] - refs[..., None, :, :],
                     (hands - hands.flip(-2))[..., :, None, :]], dim=-2)  # (T, 2, 4, 3)
    frame = _body_frame(positions)  # (T, 3, 3)
    rel = torch.einsum("...ji,...hkj->...hki", frame, rel) / proxy.height
    if body_gap is None:
        body_gap = proxy_body_gaps(positions, proxy)
    hand_gap = (hands[..., 0, :] - hands[..., 1, :]).norm(dim=-1) - 2 * proxy.hand_radius
    gaps = torch.cat([body_gap, hand_gap[..., None]], dim=-1)
    tol = contact_tolerance(proxy.height)
    contacts = torch.sigmoid((tol - gaps) / (0.01 * proxy.height))
    return SkeletalFeatures(normalized_jdm(positions), rel, gaps, contacts)


class SkeletalEncoder:
    """Embeds poses (not images) as one vector per frame; see the module docstring.

    The weights balance the three parts so that typical retargeting differences weigh alike: a row-normalised
    JDM entry moves by ~0.005, a hand offset by ~0.05 heights, a contact by ~1. The JDM's is 35, not 30: with
    the optimiser's contact term holding Mousey's fists at its huge head, the JDM error rose at 30 (+0.0005 on
    the bench) and falls at 35 (−0.006).
    """

    kind = "skeleton"
    name = "skeletal"

    def __init__(self, jdm_weight: float = 35.0, hand_weight: float = 2.0, contact_weight: float = 5.0) -> None:
        self.jdm_weight = jdm_weight
        self.hand_weight = hand_weight
        self.contact_weight = contact_weight

    def embed(self, positions: Tensor, proxy: FigureProxy, body_gap: Tensor | None = None) -> Tensor:
        """``(T, D)`` embeddings of ``(T, 22, 3)`` canonical joint positions (D = 484 + 24 + 3)."""
        f = skeletal_features(positions, proxy, body_gap)
        return torch.cat([self.jdm_weight * f.jdm.flatten(-2), self.hand_weight * f.hands.flatten(-3),
                          self.contact_weight * f.contacts], dim=-1)

    def __repr__(self) -> str:
        return "SkeletalEncoder()"


# ----------------------------------------------------------------------------------------------------------
# Proxies of a bare source skeleton and of a character
# ----------------------------------------------------------------------------------------------------------

def source_proxy(source: Motion) -> FigureProxy:
    """Human proportions for a bare source skeleton (its T-pose, whatever the rig's own rest pose is)."""
    return FigureProxy.human(canonical_rest(source.skeleton).rest_positions())


def _descendants(parents: tuple[int, ...], root: int) -> list[int]:
    out = [root]
    for j, p in enumerate(parents):
        if p in out:
            out.append(j)
    return out


def hand_vertex_samples(character: Character, per_hand: int = 16) -> list[np.ndarray]:
    """``[left (n,), right (n,)]``: up to ``per_hand`` vertex indices of each hand (vertices whose main bone is
    the hand or a finger), spread evenly over it (empty where the rig's hand leads no vertex)."""
    sk = character.skeleton
    idx = map_to_canonical(sk).indices
    main = character.skin_indices[np.arange(len(character.skin_indices)), character.skin_weights.argmax(1)]
    out = []
    for side in ("Left", "Right"):
        bones = _descendants(sk.parents, idx[CANONICAL_JOINTS.index(f"{side}Hand")])
        verts = np.nonzero(np.isin(main, bones))[0]
        out.append(verts[farthest_points(character.rest_vertices[verts], per_hand)] if len(verts) else verts)
    return out


def character_proxy(character: Character) -> FigureProxy:
    """The character's own sizes: mesh height; radii measured on the rest mesh around its joints."""
    sk = character.skeleton
    rest = torch.as_tensor(_canonical_tracks(sk.rest_pose().positions, map_to_canonical(sk).indices))
    v = character.rest_vertices
    hands = hand_vertex_samples(character, per_hand=10_000)
    palm = hand_points(rest).numpy()
    hand_r = [float(np.median(np.linalg.norm(v[h] - palm[k], axis=1))) for k, h in enumerate(hands) if len(h)]
    human = FigureProxy.human(rest.numpy())
    return FigureProxy(character.height, human.torso_radius * character.height / human.height,
                       human.head_radius * character.height / human.height,
                       float(np.mean(hand_r)) if hand_r else human.hand_radius)
