"""Simple closed meshes and a box-and-ball character for the geometry tests."""
from __future__ import annotations

import numpy as np

from core.character import PART_NAMES, Character
from core.motion import Motion
from core.skeleton import CANONICAL_JOINTS, canonical_skeleton
from tests.synthetic import tpose_offsets


def box(lo=(-1.0, -1.0, -1.0), hi=(1.0, 1.0, 1.0), n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A closed box, outward-oriented, each face split into ``n × n`` quads (two triangles each)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    verts, faces = [], []
    for axis in range(3):
        for side in (0, 1):
            u, v = [a for a in range(3) if a != axis]
            grid = np.linspace(0, 1, n + 1)
            base = len(verts)
            for i in grid:
                for j in grid:
                    p = np.empty(3)
                    p[axis] = hi[axis] if side else lo[axis]
                    p[u] = lo[u] + i * (hi[u] - lo[u])
                    p[v] = lo[v] + j * (hi[v] - lo[v])
                    verts.append(p)
            for i in range(n):
                for j in range(n):
                    a, b = base + i * (n + 1) + j, base + (i + 1) * (n + 1) + j
                    quad = [[a, b, b + 1], [a, b + 1, a + 1]]
                    faces += quad
    verts, faces = np.asarray(verts), np.asarray(faces, dtype=np.int64)
    # Merge the duplicated edge vertices, then orient every face away from the centre.
    key = np.round(verts, 9)
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    faces = inverse.ravel()[faces]
    tri = uniq[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = ((tri.mean(1) - 0.5 * (lo + hi)) * normal).sum(-1) < 0
    faces[flip] = faces[flip][:, ::-1]
    return uniq, faces


def sphere(radius: float = 1.0, centre=(0.0, 0.0, 0.0), subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """An icosphere, outward-oriented."""
    t = (1 + 5 ** 0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                  [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
                  [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
                  [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    verts = list(v / np.linalg.norm(v, axis=1, keepdims=True))
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            k = (min(a, b), max(a, b))
            if k not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[k] = len(verts) - 1
            return cache[k]

        f = np.array([[a, mid(a, b), mid(c, a)] for a, b, c in f] + [[b, mid(b, c), mid(a, b)] for a, b, c in f]
                     + [[c, mid(c, a), mid(b, c)] for a, b, c in f] + [[mid(a, b), mid(b, c), mid(c, a)] for a, b, c in f])
    return np.asarray(verts) * radius + np.asarray(centre), np.asarray(f, dtype=np.int64)


BOX = ((-0.15, 0.8, -0.1), (0.15, 1.3, 0.1))


def box_and_ball(ball_centre=(0.0, 1.0, 0.103), ball_radius: float = 0.08, ball_joint: int = 0) -> Character:
    """A character whose body is a box (torso, bound to the hips) around the spine and whose 'limb' is a ball
    (arm) bound to joint ``ball_joint``. Pen% is then the share of ball vertices inside the box, which tests
    can count exactly."""
    sk = canonical_skeleton(tpose_offsets())
    bv, bf = box(*BOX, n=4)
    sv, sf = sphere(ball_radius, ball_centre, subdivisions=2)
    verts = np.concatenate([bv, sv])
    faces = np.concatenate([bf, sf + len(bv)])
    parts = np.array([PART_NAMES.index("torso")] * len(bv) + [PART_NAMES.index("arm")] * len(sv))
    idx = np.zeros((len(verts), 4), dtype=np.int64)
    idx[len(bv):, 0] = ball_joint
    w = np.zeros((len(verts), 4))
    w[:, 0] = 1.0
    return Character("box_and_ball", sk, verts, faces, idx, w, parts)


def ball_beside_box(distance: float = 0.26, ball_radius: float = 0.08) -> Character:
    """:func:`box_and_ball` with the ball outside the box in the rest pose, ``distance`` to the side of the Spine
    joint (at (0, 1.05, 0)) and bound to it: limb vertices inside the body at rest are left out of penetration
    (:func:`core.geometry.penetration.rest_overlap`), so tests swing the ball in. Turning the Spine about z by
    about 0.9 rad brings part of the ball into the box; by -0.9 rad, part of it into the box's bottom."""
    spine = CANONICAL_JOINTS.index("Spine")
    return box_and_ball(ball_centre=(distance, 1.05, 0.0), ball_radius=ball_radius, ball_joint=spine)


def turn_joint(character: Character, joint: int, angles) -> Motion:
    """Frames that turn one joint about z by ``angles`` (radians): a ball bound to it swings; the box, bound to
    the hips, stays."""
    m = Motion.rest(character.skeleton, len(angles))
    half = np.asarray(angles) / 2
    m.rotations[:, joint] = np.stack([np.cos(half), 0 * half, 0 * half, np.sin(half)], -1)
    return m


def torso_only(character: Character) -> Character:
    """The same character, named "blob", with every vertex labelled torso (no limbs for penetration)."""
    return Character("blob", character.skeleton, character.rest_vertices, character.faces, character.skin_indices,
                     character.skin_weights, np.full(len(character.parts), PART_NAMES.index("torso")))
