"""The skeleton-aware graph retargeting network of SMT stage I (paper §3.2 and supplement), in torch.

Graph: the canonical 22 joints (:data:`core.skeleton.CANONICAL_JOINTS`) are the nodes; each parent-child bone
is an edge in both directions (42 directed edges). Per frame, node ``i`` carries ``x_i (9)`` = its local
rotation as 6D (:mod:`core.rotations`, relative to the canonical T-pose) and its position; the directed edge
``j → i`` carries ``e_ji (3)`` = the rest offset from ``j`` to ``i`` (the child's offset, or minus it).

Normalisations (ours; the paper leaves them open): positions are divided by the skeleton's height (the
rest-pose vertical extent of its joints) and offsets by a tenth of it, so characters of every size train
together and all inputs are of unit order; positions are taken relative to the hips' ground point and turned
into the hips' heading frame (yaw removed, Y up), and so is the hips' rotation, so a motion means the same
thing whichever way the character faces.

Layers (paper Eq. 16): ``x_i' = P x_i + Σ_{j∈N(i)} LeakyReLU(W [x_i, x_j, e_ji] + b)`` where ``P`` is the
identity when the channel count stays and a linear map when it changes (the authors' code uses a linear
residual there too); a temporal convolution (kernel 3 over time, shared by all nodes, replicate padding so clip
ends see no zeros) closes the encoder and the decoder. Encoder 9 → 16 → 32 → 32 (temporal), decoder
32 → 16 → 6 → 6 (temporal), root MLP 16 → 16 → 3 on the decoder's hidden root node.

Output (our choices, each measured, see :class:`NetworkConfig` and assets/retarget/MODEL_CARD.md):

* The decoder's 6 channels are a *correction* ``Δ_i`` to the source's own local rotation,
  ``R_B,i = R_A,i · rot6d(I + Δ_i)``, and its last layers start at zero, so an untrained network is exactly the
  Copy retargeter (same canonical frames as :mod:`core.retarget.copy`). The root MLP likewise gives a
  correction to Copy's scaled root path, in the heading frame, in target heights.
* ``Δ = F_φ(Z_A, E_B) − F_φ(Z_A, E_A)``: decoding onto the source's own skeleton is subtracted, so a motion
  retargeted onto its own skeleton comes back exactly (L_rec is zero by construction) and the decoder need not
  spend its capacity on learning the identity, which fought the JDM term in training.
* Only the arm chains are corrected (:data:`ARM_JOINTS`): the JDM loss can also be lowered by folding the
  spine and bending the legs, which is not retargeting.

Pure tensor helpers come first; nn.Modules after. Shapes: ``B`` batch, ``T`` frames, ``N = 22`` nodes,
``E = 42`` directed edges, ``C`` channels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..kinematics import forward_kinematics
from ..rotations import matrix_to_rot6d, rot6d_to_matrix
from ..skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS

__all__ = [
    "NUM_NODES", "EDGES", "NODE_FEATURES", "EDGE_FEATURES", "EDGE_SCALE",
    "edge_features", "rest_joint_positions", "skeleton_height", "world_rotations", "joint_positions", "heading_rotation",
    "node_features", "compose_correction", "root_velocity",
    "SpatialGraphConv", "TemporalConv", "MotionEncoder", "MotionDecoder", "GraphRetargeter", "RetargetOutput",
    "MotionDiscriminator", "NetworkConfig", "ARM_JOINTS",
]

NUM_NODES = len(CANONICAL_PARENTS)
NODE_FEATURES = 9  # 6D rotation + 3D position
EDGE_FEATURES = 3  # rest offset
EDGE_SCALE = 10.0  # edge features are offsets in tenths of the skeleton's height

# Directed edges (source j, destination i): parent → child first, then child → parent.
_BONES = [(p, c) for c, p in enumerate(CANONICAL_PARENTS) if p >= 0]
EDGES: tuple[tuple[int, int], ...] = tuple(_BONES + [(c, p) for p, c in _BONES])
_EDGE_CHILD = torch.tensor([c for p, c in _BONES] * 2)
_EDGE_SIGN = torch.tensor([1.0] * len(_BONES) + [-1.0] * len(_BONES))
_SRC = torch.tensor([j for j, i in EDGES])
_DST = torch.tensor([i for j, i in EDGES])


def _ancestry() -> Tensor:
    """``(N, N)`` with ``[j, k] = 1`` when bone ``k`` (joint k's offset) lies on the chain from the root to ``j``."""
    m = torch.zeros(NUM_NODES, NUM_NODES)
    for j in range(1, NUM_NODES):
        k = j
        while k > 0:
            m[j, k] = 1.0
            k = CANONICAL_PARENTS[k]
    return m


_ANCESTRY = _ancestry()
_PARENT_OR_SELF = torch.tensor([max(p, 0) for p in CANONICAL_PARENTS])


# ----------------------------------------------------------------------------------------------------------
# Pure tensor helpers
# ----------------------------------------------------------------------------------------------------------

def rest_joint_positions(offsets: Tensor) -> Tensor:
    """``(..., N, 3)`` T-pose joint positions of canonical skeletons with ``(..., N, 3)`` offsets, root at 0."""
    return torch.einsum("jk,...kc->...jc", _ANCESTRY.to(offsets), offsets)


def skeleton_height(offsets: Tensor) -> Tensor:
    """``(...)`` rest-pose vertical extent of the joints of canonical skeletons with ``(..., N, 3)`` offsets."""
    rest = rest_joint_positions(offsets)
    return rest[..., 1].amax(-1) - rest[..., 1].amin(-1)


def edge_features(offsets: Tensor, height: Tensor) -> Tensor:
    """``(..., E, 3)`` edge features: rest offset from each edge's source to its destination, in tenths of the
    skeleton's height.

    Tenths put bones at unit order like the other inputs; in heights the differences between two skeletons
    (0.01-0.1) were too faint for the decoder to pick up: fitting a per-skeleton correction on a tiny batch got
    5x slower.

    Args:
        offsets: ``(..., N, 3)`` canonical rest offsets (metres).
        height: ``(...)`` skeleton heights (metres), see :func:`skeleton_height`.
    """
    e = offsets[..., _EDGE_CHILD.to(offsets.device), :] * _EDGE_SIGN.to(offsets)[:, None]
    return e * (EDGE_SCALE / height[..., None, None])


def world_rotations(local: Tensor) -> Tensor:
    """``(..., N, 3, 3)`` world rotations from ``(..., N, 3, 3)`` canonical local rotations (identity rests)."""
    zeros = local.new_zeros(NUM_NODES, 3)
    return forward_kinematics(CANONICAL_PARENTS, zeros, local, local.new_zeros(3)).rotations


def joint_positions(world: Tensor, offsets: Tensor, root: Tensor) -> Tensor:
    """``(..., N, 3)`` joint positions.

    Unlike :func:`core.kinematics.forward_kinematics` this takes one skeleton per batch item, as training
    mixes skeletons in a batch.

    Args:
        world: ``(B, T, N, 3, 3)`` world rotations (:func:`world_rotations`).
        offsets: ``(B, N, 3)`` rest offsets.
        root: ``(B, T, 3)`` root positions.
    """
    bones = (world[..., _PARENT_OR_SELF.to(world.device), :, :] @ offsets[:, None, :, :, None])[..., 0]
    return root[..., None, :] + torch.einsum("jk,btkc->btjc", _ANCESTRY.to(world), bones)


def heading_rotation(root_rotation: Tensor) -> Tensor:
    """``(..., 3, 3)`` rotation about +Y giving the hips' heading.

    The heading is the horizontal direction ``left × up`` (``left`` = the hips' +X axis), which stays well
    defined when the body bends forward or back; the character faces +Z in the T-pose.
    """
    left = root_rotation[..., :, 0]
    forward = torch.stack([-left[..., 2], torch.zeros_like(left[..., 0]), left[..., 0]], -1)
    forward = forward / forward.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    c, s = forward[..., 2], forward[..., 0]
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([c, zero, s, zero, one, zero, -s, zero, c], -1).unflatten(-1, (3, 3))


def node_features(local: Tensor, positions: Tensor, height: Tensor) -> Tensor:
    """``(B, T, N, 9)`` network input: 6D local rotations and positions, both in the hips' heading frame.

    Args:
        local: ``(B, T, N, 3, 3)`` canonical local rotations (the root's is its world rotation).
        positions: ``(B, T, N, 3)`` joint positions, metres, floor at y = 0.
        height: ``(B,)`` skeleton heights.
    """
    heading = heading_rotation(local[..., 0, :, :])  # (B, T, 3, 3)
    ground = positions[..., :1, :] * positions.new_tensor([1.0, 0.0, 1.0])
    rel = (heading.transpose(-1, -2)[..., None, :, :] @ (positions - ground)[..., None])[..., 0]
    rot = local.clone()
    rot[..., 0, :, :] = heading.transpose(-1, -2) @ local[..., 0, :, :]
    return torch.cat([matrix_to_rot6d(rot), rel / height[:, None, None, None]], dim=-1)


def root_velocity(root: Tensor, local_root: Tensor, height: Tensor) -> Tensor:
    """``(B, T, 3)`` per-frame root displacement in the heading frame, in heights (first frame repeats)."""
    heading = heading_rotation(local_root)
    step = torch.cat([root[:, 1:2] - root[:, :1], root[:, 1:] - root[:, :-1]], dim=1)
    return (heading.transpose(-1, -2) @ step[..., None])[..., 0] / height[:, None, None]


def compose_correction(local: Tensor, delta: Tensor) -> Tensor:
    """``(..., N, 3, 3)`` corrected rotations ``R · rot6d(I + Δ)`` from rotations and ``(..., N, 6)`` Δ."""
    identity = delta.new_tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    return local @ rot6d_to_matrix(identity + delta)


# ----------------------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------------------

class SpatialGraphConv(nn.Module):
    """``x_i' = P x_i + Σ_j LeakyReLU(W [x_i, x_j, e_ji] + b)`` over the canonical skeleton graph.

    forward(x ``(B, T, N, C_in)``, e ``(B, E, 3)``) → ``(B, T, N, C_out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, edge_channels: int = EDGE_FEATURES,
                 negative_slope: float = 0.2) -> None:
        super().__init__()
        # W [x_i, x_j, e] + b split into its three blocks: applying them per node before gathering is cheaper.
        self.w_dst = nn.Linear(in_channels, out_channels)
        self.w_src = nn.Linear(in_channels, out_channels, bias=False)
        self.w_edge = nn.Linear(edge_channels, out_channels, bias=False)
        self.residual = nn.Identity() if in_channels == out_channels else nn.Linear(in_channels, out_channels, bias=False)
        self.negative_slope = negative_slope
        incidence = torch.zeros(NUM_NODES, len(EDGES))
        incidence[_DST, torch.arange(len(EDGES))] = 1.0
        self.register_buffer("incidence", incidence, persistent=False)

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        if x.shape[-2] != NUM_NODES or e.shape[-2:] != (len(EDGES), self.w_edge.in_features):
            raise ValueError(f"expected x (B, T, {NUM_NODES}, C) and e (B, {len(EDGES)}, "
                             f"{self.w_edge.in_features}), got {tuple(x.shape)} and {tuple(e.shape)}")
        dst = self.w_dst(x)[..., _DST.to(x.device), :]
        src = self.w_src(x)[..., _SRC.to(x.device), :]
        message = nn.functional.leaky_relu(dst + src + self.w_edge(e)[:, None], self.negative_slope)
        return self.residual(x) + torch.einsum("ne,btec->btnc", self.incidence.to(x), message)


class TemporalConv(nn.Module):
    """Per-node convolution over time, kernel ``k`` shared by all nodes, channels kept.

    ``x + act(conv(x))`` with replicate padding. forward(x ``(B, T, N, C)``) → ``(B, T, N, C)``.
    """

    def __init__(self, channels: int, kernel: int = 3, activation: bool = True, negative_slope: float = 0.2) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError("the temporal kernel must be odd (centred)")
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, padding_mode="replicate")
        self.activation = activation
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        B, T, N, C = x.shape
        y = self.conv(x.permute(0, 2, 3, 1).reshape(B * N, C, T)).reshape(B, N, C, T).permute(0, 3, 1, 2)
        if self.activation:
            y = nn.functional.leaky_relu(y, self.negative_slope)
        return x + y


# Joints whose rotations the shipped network corrects. The JDM loss can also be lowered by folding the spine
# and bending the legs (a free per-frame optimisation on held-back clips folds the spine by 80-110 degrees),
# which a small adversary does not stop; the arms are where proportions change what the hands reach. The
# hands themselves move no canonical joint, so a correction there would be unconstrained.
ARM_JOINTS: tuple[str, ...] = ("LeftShoulder", "LeftArm", "LeftForeArm", "RightShoulder", "RightArm", "RightForeArm")


@dataclass(frozen=True)
class NetworkConfig:
    """Sizes of the retargeting network (paper supplement: 9 → 16 → 32, decoder 32 → 16 → 6, root 16 → 3).

    corrected: the joints whose rotations the network may correct (others keep the source's: Copy).
    subtract_own: Δ = F_φ(Z_A, E_B) − F_φ(Z_A, E_A), so the same skeleton gets exactly no correction.
    """

    hidden: int = 16
    latent: int = 32
    kernel: int = 3
    negative_slope: float = 0.2
    subtract_own: bool = True
    corrected: tuple[str, ...] = ARM_JOINTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "corrected", tuple(self.corrected))  # lists come back from checkpoints
        unknown = set(self.corrected) - set(CANONICAL_JOINTS)
        if unknown:
            raise ValueError(f"not canonical joints: {sorted(unknown)}")


class MotionEncoder(nn.Module):
    """F_θ: Z = F_θ(Q, E). forward(Q ``(B, T, N, 9)``, E ``(B, E, 3)``) → Z ``(B, T, N, latent)``."""

    def __init__(self, config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__()
        s = config.negative_slope
        self.conv1 = SpatialGraphConv(NODE_FEATURES, config.hidden, negative_slope=s)
        self.conv2 = SpatialGraphConv(config.hidden, config.latent, negative_slope=s)
        self.temporal = TemporalConv(config.latent, config.kernel, negative_slope=s)

    def forward(self, q: Tensor, e: Tensor) -> Tensor:
        return self.temporal(self.conv2(self.conv1(q, e), e))


class MotionDecoder(nn.Module):
    """F_φ: Q_B = F_φ(Z, E_B), plus the root MLP.

    forward(Z ``(B, T, N, latent)``, E ``(B, E, 3)``) → (Δ ``(B, T, N, 6)``, root ``(B, T, 3)``).
    """

    def __init__(self, config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__()
        s = config.negative_slope
        self.conv1 = SpatialGraphConv(config.latent, config.hidden, negative_slope=s)
        self.conv2 = SpatialGraphConv(config.hidden, 6, negative_slope=s)
        self.temporal = TemporalConv(6, config.kernel, activation=False, negative_slope=s)
        self.root = nn.Sequential(nn.Linear(config.hidden, config.hidden), nn.LeakyReLU(s), nn.Linear(config.hidden, 3))
        # Start at "no correction": the untrained network is the Copy retargeter.
        for layer in (self.conv2.w_dst, self.conv2.w_src, self.conv2.w_edge, self.conv2.residual,
                      self.temporal.conv, self.root[2]):
            for p in layer.parameters():
                nn.init.zeros_(p)

    def forward(self, z: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
        h = self.conv1(z, e)
        return self.temporal(self.conv2(h, e)), self.root(h[..., 0, :])


@dataclass
class RetargetOutput:
    """delta: ``(B, T, N, 6)`` rotation corrections; root: ``(B, T, 3)`` root correction (heading frame, heights)."""

    delta: Tensor
    root: Tensor


class GraphRetargeter(nn.Module):
    """Encoder + decoder: ``Z_A = F_θ(Q_A, E_A)``, ``Q_B = F_φ(Z_A, E_B)``."""

    def __init__(self, config: NetworkConfig = NetworkConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = MotionEncoder(config)
        self.decoder = MotionDecoder(config)
        mask = torch.tensor([float(n in config.corrected) for n in CANONICAL_JOINTS])
        self.register_buffer("mask", mask[:, None], persistent=False)

    def forward(self, q_a: Tensor, e_a: Tensor, e_b: Tensor) -> RetargetOutput:
        """q_a ``(B, T, N, 9)``, e_a and e_b ``(B, E, 3)``."""
        z = self.encoder(q_a, e_a)
        delta, root = self.decoder(z, e_b)
        if self.config.subtract_own:
            own_delta, own_root = self.decoder(z, e_a)
            delta, root = delta - own_delta, root - own_root
        return RetargetOutput(delta * self.mask, root)


class MotionDiscriminator(nn.Module):
    """F_γ: logits that a motion on a skeleton is real (a Copy motion on it) rather than the network's.

    forward(Q ``(B, T, N, 9)``, root velocity ``(B, T, 3)``, E ``(B, E, 3)``) → logits ``(B, T')``, one per
    window of about 7 frames. The skeleton's edge features are appended to every frame, so proportions
    condition the judgement.
    """

    def __init__(self, channels: int = 64, negative_slope: float = 0.2) -> None:
        super().__init__()
        inputs = NUM_NODES * NODE_FEATURES + 3 + len(EDGES) * EDGE_FEATURES
        self.net = nn.Sequential(
            nn.Conv1d(inputs, channels, 3, padding=1, padding_mode="replicate"), nn.LeakyReLU(negative_slope),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1, padding_mode="replicate"),
            nn.LeakyReLU(negative_slope),
            nn.Conv1d(channels, 1, 3, padding=1, padding_mode="replicate"),
        )

    def forward(self, q: Tensor, root_vel: Tensor, e: Tensor) -> Tensor:
        B, T = q.shape[:2]
        x = torch.cat([q.flatten(2), root_vel, e.flatten(1)[:, None].expand(B, T, -1)], -1)
        return self.net(x.transpose(1, 2))[:, 0]
