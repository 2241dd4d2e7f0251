"""Fast preview rendering of motions (OpenGL through moderngl on a headless EGL context; not differentiable).

Two modes:

* mesh mode: a :class:`~core.character.Character` skinned by the motion, smooth-shaded (Lambert key light near the
  camera + sky/ground ambient + a little specular and rim), per-vertex colours (the character's own, or a
  per-body-part palette);
* stick mode: any skeleton's joints as spheres and bones as cylinders (instanced low-poly geometry), the
  character's left side blue, right side orange, the centre grey.

Both stand on a checkered floor at y = 0 with soft blob shadows under the joints, in front of a sky gradient.

Framing: :func:`frame_camera` computes one perspective camera for a whole clip (all frames fit, the clip is
centred, the view never jumps); :func:`frame_cameras` does the same for several clips shown side by side with a
shared distance, so relative sizes stay honest. Conventions (DESIGN §2): metres, Y up, a character faces +Z, so
the "front" camera sits on the +Z side and the character's left (+X) appears on the image's right.

Threads: a :class:`PreviewRenderer` owns one GL context on a private worker thread; every GL call runs there,
so a renderer (and the process-wide :func:`default_renderer`) can be used from any number of threads at once:
GL work is serialised, skinning and normals run on the calling thread, overlapping with the GL thread's
rendering of the previous chunk. Frames come out as ``(H, W, 3)`` uint8 RGB arrays, row 0 at the top.
"""
from __future__ import annotations

import functools
import math
import queue
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

__all__ = [
    "Camera", "frame_camera", "frame_cameras", "PreviewRenderer", "PreviewRendererUnavailable", "default_renderer",
    "render_motion_clip", "side_by_side", "write_before_after", "vertex_normals", "joint_sides",
    "clip_framing_points", "VIEWS",
]

VIEWS: dict[str, float] = {"front": 0.0, "three_quarter": 40.0, "side": 90.0}  # camera azimuth, degrees from +Z to +X
DEFAULT_SIZE = (512, 512)  # (width, height)
DEFAULT_FOV_Y = 38.0
DEFAULT_ELEVATION = 12.0
CHUNK = 32  # frames skinned / rendered per batch
SKIN_CHUNK_VERTICES = 2_000_000  # vertices × frames skinned at once (~100 MB of float32 blends): a million-vertex mesh goes 2 frames at a time

EGL_HELP = ("moderngl could not create a headless EGL OpenGL context. On Debian/Ubuntu install the EGL loader and "
            "Mesa's software/GPU drivers: `apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri` (Mesa llvmpipe "
            "renders on the CPU, no GPU needed). Original error: {err}")

# Colours (sRGB-ish, 0..1).
SKY_TOP = (0.90, 0.92, 0.95)
SKY_HORIZON = (0.78, 0.80, 0.84)
LEFT_COLOR = (0.22, 0.48, 0.92)
RIGHT_COLOR = (0.95, 0.50, 0.20)
CENTER_COLOR = (0.82, 0.82, 0.80)
PART_COLORS = {  # fallback palette for characters without vertex colours, by core.character.PART_NAMES
    "torso": (0.40, 0.55, 0.78), "head": (0.92, 0.76, 0.63), "arm": (0.90, 0.73, 0.60), "leg": (0.30, 0.33, 0.42),
}
DEFAULT_MESH_COLOR = (0.78, 0.74, 0.70)
MAX_BLOBS = 32


class PreviewRendererUnavailable(RuntimeError):
    """No OpenGL context could be created (see the message for the system packages to install)."""


# ----------------------------------------------------------------------------------------------------------
# Camera
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Camera:
    """A perspective camera looking from ``eye`` at ``target``.

    fov_y: vertical field of view, degrees. aspect: width / height of the image it is meant for.
    extent: radius of the framed content, metres (sizes the floor and its fade).
    """

    eye: np.ndarray
    target: np.ndarray
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0, 0.0]))
    fov_y: float = DEFAULT_FOV_Y
    aspect: float = 1.0
    near: float = 0.05
    far: float = 100.0
    extent: float = 1.0

    @property
    def forward(self) -> np.ndarray:
        f = np.asarray(self.target, float) - np.asarray(self.eye, float)
        return f / np.linalg.norm(f)

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Right, up and backward (towards the eye) unit vectors."""
        f = self.forward
        r = np.cross(f, np.asarray(self.up, float))
        r /= np.linalg.norm(r)
        return r, np.cross(r, f), -f

    def view_matrix(self) -> np.ndarray:
        """``(4, 4)`` world → camera (OpenGL: camera looks down −z)."""
        r, u, b = self.basis()
        m = np.eye(4)
        m[0, :3], m[1, :3], m[2, :3] = r, u, b
        m[:3, 3] = -m[:3, :3] @ np.asarray(self.eye, float)
        return m

    def projection_matrix(self) -> np.ndarray:
        """``(4, 4)`` camera → clip space (OpenGL conventions, depth −1..1)."""
        t = 1.0 / math.tan(math.radians(self.fov_y) / 2)
        n, f = self.near, self.far
        m = np.zeros((4, 4))
        m[0, 0], m[1, 1] = t / self.aspect, t
        m[2, 2], m[2, 3] = (f + n) / (n - f), 2 * f * n / (n - f)
        m[3, 2] = -1.0
        return m

    def view_projection(self) -> np.ndarray:
        return self.projection_matrix() @ self.view_matrix()

    def project(self, points: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``(..., 2)`` (x right, y down, pixel centres at .5) and depth ``(...)`` of points.

        ``size`` is the image's (width, height).
        """
        p = np.asarray(points, float)
        h = np.concatenate([p, np.ones(p.shape[:-1] + (1,))], axis=-1) @ self.view_projection().T
        w = h[..., 3]
        ndc = h[..., :2] / w[..., None]
        px = np.stack([(ndc[..., 0] * 0.5 + 0.5) * size[0], (0.5 - ndc[..., 1] * 0.5) * size[1]], axis=-1)
        return px, w


def _view_offset(view: str | float, elevation: float) -> np.ndarray:
    """Unit vector from the target towards the camera."""
    if isinstance(view, str):
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)} or an azimuth in degrees")
        azimuth = VIEWS[view]
    else:
        azimuth = float(view)
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])


def _finite_points(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) == 0:
        raise ValueError("no finite points to frame")
    return p


def frame_cameras(point_sets: Sequence[np.ndarray], aspect: float = 1.0, view: str | float = "front",
                  fov_y: float = DEFAULT_FOV_Y, elevation: float = DEFAULT_ELEVATION, margin: float = 0.06,
                  pad: float | Sequence[float] = 0.0) -> list[Camera]:
    """One camera per clip, all at the same distance and height, each centred horizontally on its own clip.

    Every point of every set projects inside its image, at least ``margin`` (a fraction of the half-size) from the
    edges. With a shared distance and a shared vertical target, one metre has the same size in every panel and the
    floors line up, so side-by-side comparisons are honest.

    Args:
        point_sets: per clip, points over the whole clip, ``(T, N, 3)`` or ``(N, 3)`` (NaNs are ignored).
        aspect: image width / height.
        view: ``"front"`` (camera on the +Z side, sees the face), ``"side"`` (on the +X side, the character's
            left), ``"three_quarter"`` (in between), or an azimuth in degrees from +Z towards +X.
        fov_y: vertical field of view in degrees.
        elevation: degrees the camera looks down.
        margin: empty border as a fraction of the half-width/half-height.
        pad: radius in metres around each point that must stay in view too (e.g. stick-figure joint spheres);
            one value, or one per set.
    """
    sets = [_finite_points(p) for p in point_sets]
    if not sets:
        raise ValueError("frame_cameras needs at least one point set")
    pads = [float(pad)] * len(sets) if np.isscalar(pad) else [float(p) for p in pad]  # type: ignore[arg-type]
    o = _view_offset(view, elevation)
    world_up = np.array([0.0, 1.0, 0.0])
    r = np.cross(-o, world_up)
    r /= np.linalg.norm(r)
    u = np.cross(r, -o)
    ty = math.tan(math.radians(fov_y) / 2) * (1 - margin)
    tx = ty * aspect
    cos_el = max(math.cos(math.radians(elevation)), 0.2)

    def coords(pts: np.ndarray, target: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rel = pts - target
        return rel @ r, rel @ u, rel @ o + p

    lo = np.min([s.min(axis=0) for s in sets], axis=0)
    hi = np.max([s.max(axis=0) for s in sets], axis=0)
    targets = [0.5 * (s.min(axis=0) + s.max(axis=0)) for s in sets]
    for t in targets:
        t[1] = 0.5 * (lo[1] + hi[1])
    extent = 0.5 * float(np.linalg.norm(hi - lo)) + max(pads)

    def distance() -> float:
        d = 0.0
        for pts, t, p in zip(sets, targets, pads):
            x, y, z = coords(pts, t, p)
            d = max(d, float(np.max(z + (np.abs(x) + p) / tx)), float(np.max(z + (np.abs(y) + p) / ty)),
                    float(np.max(z)) + 0.05)
        return d

    for _ in range(6):  # re-centre (perspective makes the projected box asymmetric), then fit again
        d = distance()
        ylo, yhi = math.inf, -math.inf
        for k, (pts, t, p) in enumerate(zip(sets, targets, pads)):
            x, y, z = coords(pts, t, p)
            depth = np.maximum(d - z, 1e-6)
            xn, yn = x / depth, y / depth
            targets[k] = t + r * 0.5 * (xn.max() + xn.min()) * d
            ylo, yhi = min(ylo, float(yn.min())), max(yhi, float(yn.max()))
        dy = 0.5 * (ylo + yhi) * d / cos_el
        targets = [t + world_up * dy for t in targets]
    d = distance()
    cams = []
    for pts, t, p in zip(sets, targets, pads):
        _, _, z = coords(pts, t, p)
        near = max(0.01, 0.5 * (d - float(np.max(z))))
        far = d + 6 * extent + 50.0
        cams.append(Camera(eye=t + d * o, target=t.copy(), fov_y=fov_y, aspect=aspect, near=near, far=far,
                           extent=extent))
    return cams


def frame_camera(points: np.ndarray, aspect: float = 1.0, view: str | float = "front", fov_y: float = DEFAULT_FOV_Y,
                 elevation: float = DEFAULT_ELEVATION, margin: float = 0.06, pad: float = 0.0) -> Camera:
    """A fixed camera keeping every point of a whole clip ``(T, N, 3)`` in view, centred (see :func:`frame_cameras`)."""
    return frame_cameras([points], aspect, view, fov_y, elevation, margin, pad)[0]


# ----------------------------------------------------------------------------------------------------------
# Geometry helpers (numpy, vectorised)
# ----------------------------------------------------------------------------------------------------------

def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Smooth, area-weighted unit vertex normals ``(..., V, 3)`` float32 of ``(..., V, 3)`` vertices."""
    v = np.asarray(vertices, dtype=np.float32)
    V = v.shape[-2]
    vb = v.reshape(-1, V, 3)
    B = vb.shape[0]
    f = np.asarray(faces, dtype=np.int64)
    a, b, c = vb[:, f[:, 0]], vb[:, f[:, 1]], vb[:, f[:, 2]]
    e1, e2 = b - a, c - a
    fn = np.empty_like(e1)
    fn[..., 0] = e1[..., 1] * e2[..., 2] - e1[..., 2] * e2[..., 1]
    fn[..., 1] = e1[..., 2] * e2[..., 0] - e1[..., 0] * e2[..., 2]
    fn[..., 2] = e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]
    idx = (np.arange(B)[:, None] * V + f.reshape(1, -1)).ravel()  # every corner of every face, per batch item
    n = np.empty((B * V, 3), dtype=np.float32)
    for k in range(3):
        w = np.repeat(fn[..., k], 3, axis=1).ravel()
        n[:, k] = np.bincount(idx, weights=w, minlength=B * V)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return n.reshape(v.shape)


def joint_sides(names: Sequence[str], rest_positions: np.ndarray | None = None) -> np.ndarray:
    """``(J,)`` +1 for the character's left, −1 for its right, 0 for the centre.

    By name (``Left*``, ``*_L``, ``L_*``, ``*.L``, ``lShldr``, ``CC_Base_L_*`` ...); a rig whose names say nothing
    about sides falls back to the rest pose's x (the character faces +Z, so its left is +X).
    """
    sides = np.zeros(len(names), dtype=np.int64)
    for j, name in enumerate(names):
        n = name.rsplit(":", 1)[-1]
        low = n.lower()
        if "left" in low:
            sides[j] = 1
        elif "right" in low:
            sides[j] = -1
        else:
            tokens = {t.lower() for t in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", n)}
            sides[j] = 1 if "l" in tokens else -1 if "r" in tokens else 0
    if not sides.any() and rest_positions is not None:
        x = np.asarray(rest_positions, float)[:, 0]
        tol = 0.02 * max(float(np.ptp(np.asarray(rest_positions, float)[:, 1])), 1e-6)
        sides = np.where(x > tol, 1, np.where(x < -tol, -1, 0))
    return sides


def _unit_cylinder(segments: int = 10) -> np.ndarray:
    """Open cylinder of radius 1 along z ∈ [0, 1] as a triangle list ``(N, 6)`` of position + normal."""
    ang = np.linspace(0, 2 * np.pi, segments + 1)
    ring = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    tris = []
    for i in range(segments):
        (x0, y0), (x1, y1) = ring[i], ring[i + 1]
        a, b = (x0, y0, 0.0, x0, y0, 0.0), (x1, y1, 0.0, x1, y1, 0.0)
        c, d = (x0, y0, 1.0, x0, y0, 0.0), (x1, y1, 1.0, x1, y1, 0.0)
        tris += [a, b, d, a, d, c]
    return np.asarray(tris, dtype=np.float32)


def _unit_sphere(rings: int = 8, segments: int = 12) -> np.ndarray:
    """UV sphere of radius 1 as a triangle list ``(N, 6)`` of position + normal."""
    th = np.linspace(0, np.pi, rings + 1)
    ph = np.linspace(0, 2 * np.pi, segments + 1)
    pts = np.stack([np.sin(th)[:, None] * np.cos(ph)[None], np.cos(th)[:, None] * np.ones_like(ph)[None],
                    np.sin(th)[:, None] * np.sin(ph)[None]], axis=-1)
    tris = []
    for i in range(rings):
        for k in range(segments):
            a, b, c, d = pts[i, k], pts[i, k + 1], pts[i + 1, k], pts[i + 1, k + 1]
            tris += [a, b, c, b, d, c]  # counter-clockwise seen from outside
    p = np.asarray(tris, dtype=np.float32)
    return np.concatenate([p, p], axis=1)


def _blobs_from_points(points: np.ndarray, radius: float) -> list[np.ndarray]:
    """Per frame, ``(n, 4)`` shadow blobs (x, y, z, radius) from ``(T, N, 3)`` points (finite ones, ≤ MAX_BLOBS)."""
    p = np.asarray(points, dtype=np.float32)
    N = p.shape[1]
    if N > MAX_BLOBS - 1:
        p = p[:, np.unique(np.linspace(0, N - 1, MAX_BLOBS - 1).round().astype(int))]
    out = []
    for frame in p:
        frame = frame[np.isfinite(frame).all(axis=1)]
        blobs = np.concatenate([frame, np.full((len(frame), 1), radius, np.float32)], axis=1)
        if len(frame):  # plus one wide, soft blob under the whole body at the lowest point's height
            wide = np.array([[*frame[:, [0, 2]].mean(axis=0), 0.0, 3.0 * radius]], np.float32)[:, [0, 2, 1, 3]]
            wide[0, 1] = frame[:, 1].min()
            blobs = np.concatenate([wide, blobs[:MAX_BLOBS - 1]], axis=0)
        out.append(blobs)
    return out


def _clip_scale(positions: np.ndarray) -> float:
    """A characteristic size (≈ body height) of a clip's ``(T, J, 3)`` joint positions."""
    p = np.asarray(positions, float)
    ext = np.nanmax(p, axis=1) - np.nanmin(p, axis=1)  # (T, 3)
    s = float(np.nanmedian(np.nanmax(ext, axis=1))) if np.isfinite(ext).any() else 1.0
    return s if s > 1e-6 else 1.0


PREVIEW_MAX_VERTICES = 12_000  # denser characters are drawn from a vertex-clustered copy (see _drawn)


@functools.lru_cache(maxsize=2)
def _drawn(character: Any) -> Any:
    """The character as previews draw it: itself, or above :data:`PREVIEW_MAX_VERTICES` a vertex-clustered copy
    (skin weights and colours averaged per cluster, vertices of different colours kept apart). A 1.28 M-vertex
    character took 1.2 s a frame and 5 GB to draw whole; X Bot (28k vertices) drawn from 7.5k clusters costs
    half as much a frame, and at preview size (a panel of 384-512 px, a cluster under 1 % of the body's height,
    about 3 px) the difference does not show."""
    from ..character import Character
    from ..geometry.mesh import cluster_vertices

    V = len(character.rest_vertices)
    if V <= PREVIEW_MAX_VERTICES:
        return character
    rest = np.asarray(character.rest_vertices)
    groups = None
    if character.colors is not None:  # 8 levels a channel: a mesh's own colour, not its shading
        _, groups = np.unique(np.round(np.asarray(character.colors) * 8), axis=0, return_inverse=True)
    cell = float(np.ptp(rest, axis=0).max()) / 100.0
    while True:  # coarser until few enough clusters
        cluster, faces = cluster_vertices(rest, character.faces, cell, groups)
        n = int(cluster.max()) + 1
        if n <= PREVIEW_MAX_VERTICES:
            break
        cell *= 1.5
    counts = np.bincount(cluster, minlength=n)

    def total(a: np.ndarray) -> np.ndarray:  # (V, C) summed per cluster
        return np.stack([np.bincount(cluster, a[:, c], minlength=n) for c in range(a.shape[1])], axis=1)

    def mean(a: np.ndarray) -> np.ndarray:
        return total(np.asarray(a, np.float64)) / counts[:, None]

    # Summed per (cluster, joint) from the top-4 weights: a dense (V, J) copy of a 1.28 M-vertex character's
    # weights was 0.6 GB.
    J = character.skeleton.num_joints
    slots = cluster[:, None] * J + np.asarray(character.skin_indices, np.int64)
    weights = np.bincount(slots.ravel(), np.asarray(character.skin_weights, np.float64).ravel(),
                          minlength=n * J).reshape(n, J)
    top = np.argsort(-weights, axis=1)[:, :4]
    w = np.take_along_axis(weights, top, 1)
    w /= np.maximum(w.sum(1, keepdims=True), 1e-12)
    parts = np.zeros(n, dtype=np.asarray(character.parts).dtype)
    parts[cluster] = character.parts
    colors = None if character.colors is None else mean(np.asarray(character.colors))
    return Character(character.name, character.skeleton, mean(rest), faces, top, w, parts, colors)


def _mesh_colors(character: Any) -> np.ndarray:
    if character.colors is not None:
        return np.clip(np.asarray(character.colors, dtype=np.float32), 0, 1)
    from ..character import PART_NAMES

    palette = np.array([PART_COLORS.get(n, DEFAULT_MESH_COLOR) for n in PART_NAMES], dtype=np.float32)
    parts = np.asarray(character.parts, dtype=np.int64)
    ok = (parts >= 0) & (parts < len(palette))
    out = np.tile(np.asarray(DEFAULT_MESH_COLOR, np.float32), (len(parts), 1))
    out[ok] = palette[parts[ok]]
    return out


# ----------------------------------------------------------------------------------------------------------
# GL thread and shaders
# ----------------------------------------------------------------------------------------------------------

class _GLThread:
    """One daemon thread that owns the GL context; callables run there in submission order."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="preview-gl", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)

    def submit(self, fn: Callable[[], Any]) -> Future:
        fut: Future = Future()
        self._queue.put((fn, fut))
        return fut

    def call(self, fn: Callable[[], Any]) -> Any:
        return self.submit(fn).result()

    def stop(self) -> None:
        self._queue.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=10)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


_LIGHTING = """
uniform vec3 u_eye;
uniform vec3 u_light;      // unit vector towards the key light
vec3 shade(vec3 base, vec3 P, vec3 N) {
    vec3 V = normalize(u_eye - P);
    N = normalize(N);
    if (!gl_FrontFacing) N = -N;  // two-sided; normals follow the winding, so this also fixes inside-out meshes
    float ndl = max(dot(N, u_light), 0.0);
    float hemi = 0.5 + 0.5 * N.y;
    vec3 ambient = mix(vec3(0.30, 0.28, 0.27), vec3(0.50, 0.53, 0.58), hemi);
    vec3 H = normalize(u_light + V);
    float spec = pow(max(dot(N, H), 0.0), 48.0) * 0.20;
    float rim = pow(1.0 - max(dot(N, V), 0.0), 3.0) * 0.22;
    return base * (ambient + 0.70 * ndl * vec3(1.0, 0.98, 0.95)) + vec3(spec) + rim * vec3(0.85, 0.90, 1.0);
}
"""

_MESH_VS = """
#version 330
uniform mat4 u_vp;
uniform float u_floor_clip;
in vec3 in_pos; in vec3 in_normal; in vec3 in_color;
out vec3 v_pos; out vec3 v_normal; out vec3 v_color;
void main() {
    v_pos = in_pos; v_normal = in_normal; v_color = in_color;
    gl_ClipDistance[0] = u_floor_clip > 0.5 ? in_pos.y : 1.0;  // the floor hides what is below it
    gl_Position = u_vp * vec4(in_pos, 1.0);
}
"""

_MESH_FS = """
#version 330
in vec3 v_pos; in vec3 v_normal; in vec3 v_color;
out vec4 f_color;
""" + _LIGHTING + """
void main() { f_color = vec4(clamp(shade(v_color, v_pos, v_normal), 0.0, 1.0), 1.0); }
"""

_STICK_VS = """
#version 330
uniform mat4 u_vp;
uniform int u_kind;   // 0: cylinder from a to b, 1: sphere at a
uniform float u_floor_clip;
in vec3 in_vert; in vec3 in_norm;
in vec3 i_a; in vec3 i_b; in float i_r; in vec3 i_color;
out vec3 v_pos; out vec3 v_normal; out vec3 v_color;
void main() {
    vec3 P; vec3 N;
    if (u_kind == 0) {
        vec3 d = i_b - i_a;
        float len = length(d);
        vec3 z = len > 1e-8 ? d / len : vec3(0.0, 1.0, 0.0);
        vec3 h = abs(z.y) < 0.99 ? vec3(0.0, 1.0, 0.0) : vec3(1.0, 0.0, 0.0);
        vec3 x = normalize(cross(h, z));
        vec3 y = cross(z, x);
        P = i_a + (x * in_vert.x + y * in_vert.y) * i_r + d * in_vert.z;
        N = x * in_norm.x + y * in_norm.y;
    } else {
        P = i_a + in_vert * i_r;
        N = in_norm;
    }
    v_pos = P; v_normal = N; v_color = i_color;
    gl_ClipDistance[0] = u_floor_clip > 0.5 ? P.y : 1.0;
    gl_Position = u_vp * vec4(P, 1.0);
}
"""

_FLOOR_VS = """
#version 330
uniform mat4 u_vp;
uniform vec3 u_center;
uniform float u_half;
in vec2 in_xz;
out vec3 v_pos;
void main() {
    v_pos = vec3(u_center.x + in_xz.x * u_half, 0.0, u_center.z + in_xz.y * u_half);
    gl_Position = u_vp * vec4(v_pos, 1.0);
}
"""

_FLOOR_FS = """
#version 330
uniform vec3 u_center;
uniform float u_tile;
uniform float u_fade;
uniform vec3 u_horizon;
in vec3 v_pos;
out vec4 f_color;
void main() {
    vec2 p = v_pos.xz / u_tile;
    vec2 cell = floor(p);
    float checker = mod(cell.x + cell.y, 2.0);
    vec3 base = mix(vec3(0.80, 0.80, 0.79), vec3(0.71, 0.72, 0.72), checker);
    vec2 g = abs(fract(p - 0.5) - 0.5) / max(fwidth(p), vec2(1e-6));
    float line = 1.0 - min(min(g.x, g.y), 1.0);
    base = mix(base, vec3(0.58, 0.59, 0.61), 0.6 * line);
    float dist = length(v_pos.xz - u_center.xz);
    f_color = vec4(mix(base, u_horizon, smoothstep(0.35 * u_fade, u_fade, dist)), 1.0);
}
"""

# Soft blob shadows: one small floor quad per shadow-casting point, multiplied onto the floor (only the pixels near
# the character pay for it; a per-pixel loop over all blobs in the floor shader is ~10x slower on llvmpipe).
_SHADOW_VS = """
#version 330
uniform mat4 u_vp;
uniform float u_scale;
in vec2 in_xz;
in vec4 i_blob;   // x, y, z of the caster, base radius
out vec2 v_d;     // offset from the blob centre in units of its radius
out float v_strength;
void main() {
    float h = max(i_blob.y, 0.0);
    float r = max(i_blob.w + 0.35 * h, 1e-4);
    v_strength = (i_blob.w > 0.0 && i_blob.y > -i_blob.w) ? 0.6 * exp(-3.0 * h / u_scale) : 0.0;  // none from below
    // The quad ends where the blob darkens by less than 1 %: high joints cast wide, faint blobs, and drawing
    // them out to a fixed 2.5 radii cost more than the mesh itself on a software rasteriser.
    float reach = sqrt(max(log(100.0 * v_strength), 0.0));
    v_d = in_xz * reach;
    gl_Position = u_vp * vec4(i_blob.x + in_xz.x * reach * r, 0.0, i_blob.z + in_xz.y * reach * r, 1.0);
}
"""

_SHADOW_FS = """
#version 330
uniform int u_pass;
in vec2 v_d;
in float v_strength;
out vec4 f_color;
void main() {
    if (u_pass == 0) f_color = vec4(1.0, 1.0, 1.0, 1.0 - v_strength * exp(-dot(v_d, v_d)));
    else f_color = vec4(0.0, 0.0, 0.0, 1.0);
}
"""

_SKY_VS = """
#version 330
out float v_t;
void main() {
    vec2 p = vec2((gl_VertexID == 1) ? 3.0 : -1.0, (gl_VertexID == 2) ? 3.0 : -1.0);
    v_t = p.y * 0.5 + 0.5;
    gl_Position = vec4(p, 0.0, 1.0);
}
"""

_COPY_FS = """
#version 330
uniform sampler2D u_tex;
out vec4 f_color;
void main() { f_color = vec4(texelFetch(u_tex, ivec2(gl_FragCoord.xy), 0).rgb, 1.0); }
"""

_SKY_FS = """
#version 330
uniform vec3 u_top; uniform vec3 u_horizon;
in float v_t;
out vec4 f_color;
void main() { f_color = vec4(mix(u_horizon, u_top, clamp(v_t, 0.0, 1.0)), 1.0); }
"""


def _size(size: int | Sequence[int]) -> tuple[int, int]:
    """(width, height) from a size given as (width, height) or as one int for a square."""
    w, h = (size, size) if np.isscalar(size) else size  # type: ignore[misc]
    if int(w) < 1 or int(h) < 1:
        raise ValueError(f"image size must be positive, got {size}")
    return int(w), int(h)


def _mat_bytes(m: np.ndarray) -> bytes:
    return np.ascontiguousarray(m.T, dtype=np.float32).tobytes()  # GL wants column-major


@dataclass(eq=False)
class _MeshScene:
    vbo: Any
    cbo: Any
    ibo: Any
    vao: Any
    num_vertices: int

    def release(self) -> None:
        for obj in (self.vao, self.vbo, self.cbo, self.ibo):
            obj.release()


@dataclass(eq=False)
class _StickScene:
    bones: Any
    joints: Any
    bone_vao: Any
    joint_vao: Any
    num_bones: int
    num_joints: int

    def release(self) -> None:
        for obj in (self.bone_vao, self.joint_vao, self.bones, self.joints):
            obj.release()


class PreviewRenderer:
    """A reusable headless OpenGL preview renderer (one EGL context, created on first use).

    Use :meth:`render_motion` (or :func:`render_motion_clip`), or the lower-level :meth:`render_mesh` /
    :meth:`render_skeleton`. All methods may be called from any thread: GL work runs on the renderer's own thread.
    :meth:`release` frees every GL resource; the renderer can be used again afterwards (a new context is made).

    Args:
        samples: MSAA samples (0 or 1 for none; clamped to what the driver offers).
    """

    def __init__(self, samples: int = 4) -> None:
        self.samples = int(samples)
        self._lock = threading.Lock()
        self._gl: _GLThread | None = None
        self._ctx: Any = None
        self._progs: dict[str, Any] = {}
        self._static: dict[str, Any] = {}
        self._targets: dict[tuple[int, int], tuple[Any, Any, bytearray]] = {}
        self._backgrounds: dict[tuple, Any] = {}  # (size, camera, scale) -> framebuffer with a colour texture
        self._scenes: set[Any] = set()

    # -- lifetime -------------------------------------------------------------------------------------------
    def _thread(self) -> _GLThread:
        with self._lock:
            if self._gl is None or not self._gl.alive:
                self._gl = _GLThread()
            return self._gl

    def _call(self, fn: Callable[[], Any]) -> Any:
        return self._thread().call(fn)

    def _submit(self, fn: Callable[[], Any]) -> Future:
        return self._thread().submit(fn)

    def _ensure_context(self) -> None:  # GL thread
        if self._ctx is not None:
            return
        import moderngl

        try:
            ctx = moderngl.create_standalone_context(backend="egl", require=330)
        except Exception as exc:  # noqa: BLE001 - the cause varies by system; the fix does not
            raise PreviewRendererUnavailable(EGL_HELP.format(err=exc)) from exc
        self._ctx = ctx
        ctx.enable_direct(0x3000)  # GL_CLIP_DISTANCE0: clip geometry below the floor (see the vertex shaders)
        self.samples = min(self.samples, int(ctx.max_samples)) if self.samples > 1 else 0
        self._progs = {
            "mesh": ctx.program(vertex_shader=_MESH_VS, fragment_shader=_MESH_FS),
            "stick": ctx.program(vertex_shader=_STICK_VS, fragment_shader=_MESH_FS),
            "floor": ctx.program(vertex_shader=_FLOOR_VS, fragment_shader=_FLOOR_FS),
            "sky": ctx.program(vertex_shader=_SKY_VS, fragment_shader=_SKY_FS),
            "shadow": ctx.program(vertex_shader=_SHADOW_VS, fragment_shader=_SHADOW_FS),
            "copy": ctx.program(vertex_shader=_SKY_VS, fragment_shader=_COPY_FS),
        }
        quad = np.array([[-1, -1], [1, -1], [1, 1], [-1, -1], [1, 1], [-1, 1]], dtype=np.float32)
        floor_vbo = ctx.buffer(quad.tobytes())
        cyl = ctx.buffer(_unit_cylinder().tobytes())
        sph = ctx.buffer(_unit_sphere().tobytes())
        self._static = {
            "floor_vbo": floor_vbo, "cyl": cyl, "sph": sph,
            "floor_vao": ctx.vertex_array(self._progs["floor"], [(floor_vbo, "2f", "in_xz")]),
            "sky_vao": ctx.vertex_array(self._progs["sky"], []),
            "copy_vao": ctx.vertex_array(self._progs["copy"], []),
        }
        blobs = ctx.buffer(reserve=MAX_BLOBS * 16, dynamic=True)
        self._static["blobs"] = blobs
        self._static["shadow_vao"] = ctx.vertex_array(
            self._progs["shadow"], [(floor_vbo, "2f", "in_xz"), (blobs, "4f/i", "i_blob")])

    def release(self) -> None:
        """Free all GL objects and the context, and stop the GL thread (safe to call twice)."""
        with self._lock:
            gl, self._gl = self._gl, None
        if gl is None or not gl.alive:
            return

        def _free() -> None:
            for scene in list(self._scenes):
                scene.release()
            self._scenes.clear()
            for fbo, resolve, _ in self._targets.values():
                _release_fbo(fbo)
                if resolve is not fbo:
                    _release_fbo(resolve)
            self._targets.clear()
            for bg in self._backgrounds.values():
                _release_fbo(bg)
            self._backgrounds.clear()
            for obj in self._static.values():
                if hasattr(obj, "release"):
                    obj.release()
            self._static.clear()
            for prog in self._progs.values():
                prog.release()
            self._progs.clear()
            if self._ctx is not None:
                self._ctx.release()
                self._ctx = None

        try:
            gl.call(_free)
        finally:
            gl.stop()

    def __enter__(self) -> "PreviewRenderer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    @property
    def info(self) -> dict[str, Any]:
        """The GL driver's vendor/renderer/version strings (creates the context)."""
        def _info() -> dict[str, Any]:
            self._ensure_context()
            return {k: self._ctx.info[k] for k in ("GL_VENDOR", "GL_RENDERER", "GL_VERSION")} | {
                "samples": self.samples}
        return self._call(_info)

    # -- GL-thread helpers ----------------------------------------------------------------------------------
    def _target(self, size: tuple[int, int]) -> tuple[Any, Any, bytearray]:
        if size not in self._targets:
            if len(self._targets) >= 4:  # keep a few sizes; drop the oldest
                old = next(iter(self._targets))
                fbo, resolve, _ = self._targets.pop(old)
                _release_fbo(fbo)
                if resolve is not fbo:
                    _release_fbo(resolve)
            ctx = self._ctx
            resolve = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4)],
                                      depth_attachment=ctx.depth_renderbuffer(size))
            if self.samples > 1:
                fbo = ctx.framebuffer(color_attachments=[ctx.renderbuffer(size, 4, samples=self.samples)],
                                      depth_attachment=ctx.depth_renderbuffer(size, samples=self.samples))
            else:
                fbo = resolve
            self._targets[size] = (fbo, resolve, bytearray(size[0] * size[1] * 3))
        return self._targets[size]

    def _background(self, size: tuple[int, int], cam: Camera, scale: float) -> Any:
        """Sky + floor for a fixed camera, drawn once per clip (with MSAA) into a texture."""
        import moderngl

        key = (size, tuple(np.round(cam.eye, 6)), tuple(np.round(cam.target, 6)), cam.fov_y, cam.aspect,
               round(float(scale), 6))
        if key in self._backgrounds:
            self._backgrounds[key] = self._backgrounds.pop(key)  # most recently used last
            return self._backgrounds[key]
        if len(self._backgrounds) >= 8:
            _release_fbo(self._backgrounds.pop(next(iter(self._backgrounds))))
        ctx = self._ctx
        fbo, _, _ = self._target(size)
        fbo.use()
        ctx.viewport = (0, 0, size[0], size[1])
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE | moderngl.BLEND)
        ctx.clear(*SKY_HORIZON, 1.0, depth=1.0)
        self._static["sky_vao"].render(moderngl.TRIANGLES, vertices=3)
        self._static["floor_vao"].render(moderngl.TRIANGLES)
        bg = ctx.framebuffer(color_attachments=[ctx.texture(size, 4)])
        ctx.copy_framebuffer(bg, fbo)  # resolves MSAA
        self._backgrounds[key] = bg
        return bg

    def _begin_frame(self, size: tuple[int, int], cam: Camera, scale: float, blobs: np.ndarray) -> Any:
        import moderngl

        ctx = self._ctx
        bg = self._background(size, cam, scale)
        fbo, _, _ = self._target(size)
        fbo.use()
        ctx.viewport = (0, 0, size[0], size[1])
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE | moderngl.BLEND)
        ctx.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        bg.color_attachments[0].use(0)
        self._static["copy_vao"].render(moderngl.TRIANGLES, vertices=3)
        n = len(blobs)
        if n:
            self._static["blobs"].write(np.ascontiguousarray(blobs, dtype=np.float32).tobytes())
            # Only the background is drawn so far and the shadows lie on the floor: no depth test. Pass 1 keeps
            # the darkest shadow factor per pixel in the alpha channel (MIN: overlapping blobs do not compound);
            # pass 2 multiplies the colour by it once (the first fragment that applies it resets alpha to 1).
            ctx.enable(moderngl.BLEND)
            prog = self._progs["shadow"]
            fbo.color_mask = (False, False, False, True)
            ctx.blend_equation = moderngl.MIN
            prog["u_pass"].value = 0
            self._static["shadow_vao"].render(moderngl.TRIANGLES, instances=n)
            fbo.color_mask = (True, True, True, True)
            ctx.blend_equation = moderngl.FUNC_ADD
            ctx.blend_func = moderngl.ZERO, moderngl.DST_ALPHA, moderngl.ONE, moderngl.ZERO
            prog["u_pass"].value = 1
            self._static["shadow_vao"].render(moderngl.TRIANGLES, instances=n)
            ctx.blend_func = moderngl.DEFAULT_BLENDING
            ctx.disable(moderngl.BLEND)
        ctx.enable(moderngl.DEPTH_TEST)
        return fbo

    def _set_frame_uniforms(self, size: tuple[int, int], cam: Camera, scale: float) -> None:
        vp = _mat_bytes(cam.view_projection())
        r, u, b = cam.basis()
        light = b + 0.55 * u - 0.35 * r  # a key light near the camera: above and to the viewer's left
        light /= np.linalg.norm(light)
        for name in ("mesh", "stick"):
            prog = self._progs[name]
            prog["u_vp"].write(vp)
            prog["u_eye"].value = tuple(np.asarray(cam.eye, float))
            prog["u_light"].value = tuple(light)
            prog["u_floor_clip"].value = 1.0 if cam.eye[1] > 0 else 0.0
        floor = self._progs["floor"]
        floor["u_vp"].write(vp)
        floor["u_center"].value = (float(cam.target[0]), 0.0, float(cam.target[2]))
        fade = max(4.0 * cam.extent, 3.0 * scale, 4.0)
        floor["u_half"].value = fade * 1.5
        floor["u_fade"].value = fade
        floor["u_tile"].value = 0.5 if scale > 0.5 else max(scale, 0.01)
        shadow = self._progs["shadow"]
        shadow["u_vp"].write(vp)
        shadow["u_scale"].value = max(scale, 1e-3)
        floor["u_horizon"].value = SKY_HORIZON
        sky = self._progs["sky"]
        sky["u_top"].value = SKY_TOP
        sky["u_horizon"].value = SKY_HORIZON
        self._progs["copy"]["u_tex"].value = 0

    def _finish_frame(self, size: tuple[int, int]) -> np.ndarray:
        fbo, resolve, buf = self._target(size)
        if fbo is not resolve:
            self._ctx.copy_framebuffer(resolve, fbo)
        resolve.read_into(buf, components=3, alignment=1)
        return np.frombuffer(buf, dtype=np.uint8).reshape(size[1], size[0], 3)[::-1].copy()

    # -- mesh mode -------------------------------------------------------------------------------------------
    def _new_mesh_scene(self, faces: np.ndarray, colors: np.ndarray) -> _MeshScene:
        self._ensure_context()
        ctx = self._ctx
        V = len(colors)
        vbo = ctx.buffer(reserve=V * 24, dynamic=True)
        cbo = ctx.buffer(np.ascontiguousarray(colors, dtype=np.float32).tobytes())
        ibo = ctx.buffer(np.ascontiguousarray(faces, dtype=np.int32).tobytes())
        vao = ctx.vertex_array(self._progs["mesh"], [(vbo, "3f 3f", "in_pos", "in_normal"), (cbo, "3f", "in_color")],
                               index_buffer=ibo, index_element_size=4)
        scene = _MeshScene(vbo, cbo, ibo, vao, V)
        self._scenes.add(scene)
        return scene

    def _check_scene(self, scene: Any) -> None:
        if scene not in self._scenes:
            raise RuntimeError("the preview renderer was released while a clip was being rendered")

    def _release_scene(self, scene: Any) -> None:
        if scene in self._scenes:
            self._scenes.discard(scene)
            scene.release()

    def _render_mesh_chunk(self, scene: _MeshScene, data: np.ndarray, blobs: np.ndarray, size: tuple[int, int],
                           cam: Camera, scale: float) -> list[np.ndarray]:
        import moderngl

        self._check_scene(scene)
        self._set_frame_uniforms(size, cam, scale)
        frames = []
        for t in range(len(data)):
            self._begin_frame(size, cam, scale, blobs[t])
            scene.vbo.write(data[t])
            scene.vao.render(moderngl.TRIANGLES)
            frames.append(self._finish_frame(size))
        return frames

    def render_mesh(self, vertex_chunks: Iterable[np.ndarray], faces: np.ndarray, colors: np.ndarray | None,
                    camera: Camera, size: int | tuple[int, int] = DEFAULT_SIZE,
                    shadow_points: Iterable[np.ndarray] | None = None, scale: float | None = None
                    ) -> Iterator[np.ndarray]:
        """Frames of a deforming mesh.

        Args:
            vertex_chunks: ``(C, V, 3)`` vertex positions, chunk after chunk (or one ``(T, V, 3)`` array in a list);
                smooth normals are computed with :func:`vertex_normals`. ``(C, V, 6)`` chunks carry their own
                unit normals after the positions.
            faces: ``(F, 3)`` triangles. colors: ``(V, 3)`` in [0, 1], or None for a neutral clay colour.
            camera: e.g. from :func:`frame_camera`. size: (width, height), or one int for a square.
            shadow_points: per chunk, ``(C, N, 3)`` points casting blob shadows (e.g. joints); None: none.
            scale: body size in metres (shadow softness, floor tiles); default: from the first chunk.
        """
        size = _size(size)
        faces = np.asarray(faces)
        shadow_iter = iter(shadow_points) if shadow_points is not None else None
        scene = None

        def submit_chunks() -> Iterator[Future]:
            nonlocal scene, scale
            for chunk in vertex_chunks:
                v = np.asarray(chunk, dtype=np.float32)
                if v.ndim == 2:
                    v = v[None]
                if scale is None:
                    scale = float(np.ptp(v[0, :, 1])) or 1.0
                if scene is None:
                    cols = (np.tile(np.asarray(DEFAULT_MESH_COLOR, np.float32), (v.shape[1], 1)) if colors is None
                            else np.asarray(colors, np.float32))
                    scene = self._call(lambda: self._new_mesh_scene(faces, cols))
                data = v if v.shape[-1] == 6 else np.concatenate([v, vertex_normals(v, faces)], axis=-1)
                pts = next(shadow_iter) if shadow_iter is not None else np.zeros((len(v), 0, 3), np.float32)
                blobs = _blobs_from_points(pts, 0.06 * scale)
                yield self._submit(lambda s=scene, d=data, b=blobs, sc=scale:
                                   self._render_mesh_chunk(s, d, b, size, camera, sc))

        try:
            yield from _one_chunk_ahead(submit_chunks())
        finally:
            if scene is not None and self._gl is not None and self._gl.alive:
                self._submit(lambda s=scene: self._release_scene(s))

    # -- stick mode -------------------------------------------------------------------------------------------
    def _new_stick_scene(self, num_bones: int, num_joints: int) -> _StickScene:
        self._ensure_context()
        ctx = self._ctx
        prog = self._progs["stick"]
        bones = ctx.buffer(reserve=max(num_bones, 1) * 40, dynamic=True)
        joints = ctx.buffer(reserve=max(num_joints, 1) * 40, dynamic=True)
        inst = "3f 3f 1f 3f/i"
        names = ("i_a", "i_b", "i_r", "i_color")
        bone_vao = ctx.vertex_array(prog, [(self._static["cyl"], "3f 3f", "in_vert", "in_norm"), (bones, inst, *names)])
        joint_vao = ctx.vertex_array(prog, [(self._static["sph"], "3f 3f", "in_vert", "in_norm"),
                                            (joints, inst, *names)])
        scene = _StickScene(bones, joints, bone_vao, joint_vao, num_bones, num_joints)
        self._scenes.add(scene)
        return scene

    def _render_stick_chunk(self, scene: _StickScene, bones: np.ndarray, joints: np.ndarray, blobs: np.ndarray,
                            size: tuple[int, int], cam: Camera, scale: float) -> list[np.ndarray]:
        import moderngl

        self._check_scene(scene)
        self._set_frame_uniforms(size, cam, scale)
        prog = self._progs["stick"]
        frames = []
        for t in range(len(joints)):
            self._begin_frame(size, cam, scale, blobs[t])
            if scene.num_bones:
                scene.bones.write(bones[t])
                prog["u_kind"].value = 0
                scene.bone_vao.render(moderngl.TRIANGLES, instances=scene.num_bones)
            scene.joints.write(joints[t])
            prog["u_kind"].value = 1
            scene.joint_vao.render(moderngl.TRIANGLES, instances=scene.num_joints)
            frames.append(self._finish_frame(size))
        return frames

    def render_skeleton(self, positions: np.ndarray, parents: Sequence[int], camera: Camera,
                        size: int | tuple[int, int] = DEFAULT_SIZE, sides: np.ndarray | None = None,
                        radius: float | None = None) -> Iterator[np.ndarray]:
        """Stick-figure frames of ``(T, J, 3)`` joint positions.

        Args:
            parents: ``J`` parent indices (−1 for roots). sides: ``(J,)`` +1 left / −1 right / 0 centre colours.
            radius: bone radius in metres; default 1.6 % of the clip's body size (joints are 1.6× that).
        """
        size = _size(size)
        P = np.asarray(positions, dtype=np.float32)
        T, J = P.shape[:2]
        scale = _clip_scale(P)
        r = float(radius) if radius is not None else 0.016 * scale
        side = np.zeros(J, np.int64) if sides is None else np.asarray(sides)
        palette = {1: LEFT_COLOR, -1: RIGHT_COLOR, 0: CENTER_COLOR}
        jcol = np.array([palette[int(np.sign(s))] for s in side], dtype=np.float32)
        child = np.array([j for j, p in enumerate(parents) if p >= 0], dtype=np.int64)
        par = np.array([parents[j] for j in child], dtype=np.int64)
        scene = self._call(lambda: self._new_stick_scene(len(child), J))

        def submit_chunks() -> Iterator[Future]:
            for s in range(0, T, CHUNK):
                valid = np.isfinite(P[s:s + CHUNK]).all(axis=-1)  # missing joints (NaN) are not drawn
                p = np.where(valid[..., None], P[s:s + CHUNK], 0.0)
                C = len(p)
                joints = np.empty((C, J, 10), np.float32)
                joints[..., 0:3] = p
                joints[..., 3:6] = p
                joints[..., 6] = np.where(valid, 1.6 * r, 0.0)
                joints[..., 7:10] = jcol
                bones = np.empty((C, len(child), 10), np.float32)
                bones[..., 0:3] = p[:, par]
                bones[..., 3:6] = p[:, child]
                bones[..., 6] = np.where(valid[:, par] & valid[:, child], r, 0.0)
                bones[..., 7:10] = jcol[child]
                blobs = _blobs_from_points(P[s:s + CHUNK], 0.05 * scale)
                yield self._submit(lambda sc=scene, b=bones, j=joints, bl=blobs:
                                   self._render_stick_chunk(sc, b, j, bl, size, camera, scale))

        try:
            yield from _one_chunk_ahead(submit_chunks())
        finally:
            if self._gl is not None and self._gl.alive:
                self._submit(lambda sc=scene: self._release_scene(sc))

    # -- motions ----------------------------------------------------------------------------------------------
    def render_motion(self, character: Any, motion: Any, size: int | tuple[int, int] = DEFAULT_SIZE,
                      camera: Camera | None = None, view: str | float = "front",
                      skinner: "_Skinner | None" = None) -> Iterator[np.ndarray]:
        """Frames of a motion: mesh mode on a Character, stick mode when ``character`` is None.

        ``camera`` defaults to :func:`frame_camera` over the whole clip (one extra skinning pass in mesh mode).
        ``skinner``: the caller's :class:`_Skinner` of ``_drawn(character)`` by ``motion`` (its forward kinematics
        already done, as for framing), or None to make one.
        """
        size = _size(size)
        character = _drawn(character) if character is not None else None
        if skinner is None and character is not None:
            skinner = _Skinner(character, motion)
        positions = skinner.positions if skinner is not None else motion.positions()
        if camera is None:
            pts, pad = clip_framing_points(character, motion, positions, skinner)
            camera = frame_camera(pts, aspect=size[0] / size[1], view=view, pad=pad)
        if skinner is None:
            sk = motion.skeleton
            sides = joint_sides(sk.names, sk.rest_positions())
            yield from self.render_skeleton(positions, sk.parents, camera, size, sides)
            return
        scale = _clip_scale(positions)
        step = skinner.chunk
        shadow = (positions[s:s + step] for s in range(0, motion.num_frames, step))
        yield from self.render_mesh(skinner.chunks(normals=True), character.faces, _mesh_colors(character),
                                    camera, size, shadow_points=shadow, scale=scale)


def _one_chunk_ahead(futures: Iterator[Future]) -> Iterator[np.ndarray]:
    """Frames of each rendered chunk, submitting the next chunk first so the GL thread draws while the
    caller skins, composes or encodes; a chunk still queued when the caller stops is cancelled."""
    pending: Future | None = None
    try:
        for fut in futures:
            if pending is not None:
                yield from pending.result()
            pending = fut
        if pending is not None:
            done, pending = pending, None
            yield from done.result()
    finally:
        if pending is not None:
            pending.cancel()


def _release_fbo(fbo: Any) -> None:
    for att in list(fbo.color_attachments) + ([fbo.depth_attachment] if fbo.depth_attachment else []):
        att.release()
    fbo.release()


class _Skinner:
    """Fast float32 linear blend skinning of a character by a motion, chunk by chunk (numpy).

    Same maths as :meth:`Character.posed_vertices` (blend the joints' 3x4 skinning transforms by the skin weights,
    apply to the rest vertices); normals are the rest mesh's smooth normals turned by the same blended matrices
    (the usual real-time approximation: no per-frame normal recomputation).
    """

    def __init__(self, character: Any, motion: Any) -> None:
        import torch

        from ..kinematics import skinning_transforms

        if motion.skeleton.names != character.skeleton.names:
            raise ValueError(f"motion is on another skeleton than character {character.name!r}'s")
        with torch.no_grad():
            pose = motion.fk(torch.float64)
            transforms = skinning_transforms(pose, character.skeleton.rest_pose(torch.float64))
            self.positions: np.ndarray = pose.positions.numpy()  # (T, J, 3) joints, metres
            self.weights = character.dense_weights(torch.float32).numpy()  # (V, J)
        self.transforms = transforms.flatten(-2).numpy().astype(np.float32)  # (T, J, 12), rows of 3x4
        self.rest = np.asarray(character.rest_vertices, dtype=np.float32)
        self._faces = np.asarray(character.faces)
        self.chunk = max(1, min(CHUNK, SKIN_CHUNK_VERTICES // max(len(self.rest), 1)))  # frames per chunk
        self._rest_normals: np.ndarray | None = None

    @property
    def rest_normals(self) -> np.ndarray:
        if self._rest_normals is None:
            self._rest_normals = vertex_normals(self.rest, self._faces)
        return self._rest_normals

    def chunks(self, normals: bool = True, chunk: int | None = None) -> Iterator[np.ndarray]:
        """``(C, V, 6)`` positions + unit normals (or ``(C, V, 3)`` positions) float32, ``chunk`` frames at a
        time (default: :attr:`chunk`)."""
        chunk = chunk or self.chunk
        # Planar (C, 12, V) layout keeps every elementwise operation on contiguous rows.
        wt = np.ascontiguousarray(self.weights.T)  # (J, V)
        x, y, z = np.ascontiguousarray(self.rest.T)
        nx, ny, nz = np.ascontiguousarray(self.rest_normals.T) if normals else (None, None, None)
        k = 6 if normals else 3
        for s in range(0, len(self.transforms), chunk):
            T = np.ascontiguousarray(self.transforms[s:s + chunk].transpose(0, 2, 1))  # (C, 12, J)
            # One 2-D product: numpy's batched matmul of a transposed view skipped BLAS (2x slower).
            B = (T.reshape(-1, T.shape[-1]) @ wt).reshape(T.shape[0], 12, -1)  # (C, 12, V) blended 3x4 rows
            out = np.empty((B.shape[0], k, B.shape[2]), np.float32)
            for row in range(3):
                r = B[:, 4 * row:4 * row + 4]
                o = out[:, row]
                np.multiply(r[:, 0], x, out=o)
                o += r[:, 1] * y
                o += r[:, 2] * z
                o += r[:, 3]
                if normals:
                    o = out[:, 3 + row]
                    np.multiply(r[:, 0], nx, out=o)
                    o += r[:, 1] * ny
                    o += r[:, 2] * nz
            if normals:
                n = out[:, 3:]
                n /= np.sqrt(np.maximum((n * n).sum(axis=1, keepdims=True), 1e-24))
            yield np.ascontiguousarray(out.transpose(0, 2, 1))


def clip_framing_points(character: Any, motion: Any, positions: np.ndarray | None = None,
                        skinner: _Skinner | None = None) -> tuple[np.ndarray, float]:
    """Points that bound a clip over time, for :func:`frame_camera`, and the pad radius to add around them.

    Mesh mode: the 8 corners of each frame's vertex bounding box ``(T, 8, 3)`` (one skinning pass). Stick mode:
    the joints ``(T, J, 3)`` with the joint-sphere radius as pad.
    """
    if character is None:
        if positions is None:
            positions = motion.positions()
        return positions, 1.6 * 0.016 * _clip_scale(positions)
    skinner = skinner or _Skinner(character, motion)
    sel = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    corners = []
    for v in skinner.chunks(normals=False):
        both = np.stack([v.min(axis=1), v.max(axis=1)], axis=1)  # (C, 2, 3)
        corners.append(np.stack([both[:, sel[:, a], a] for a in range(3)], axis=-1))  # (C, 8, 3)
    return np.concatenate(corners, axis=0), 0.0


# ----------------------------------------------------------------------------------------------------------
# Module-level API
# ----------------------------------------------------------------------------------------------------------

_DEFAULT: PreviewRenderer | None = None
_DEFAULT_LOCK = threading.Lock()


def default_renderer() -> PreviewRenderer:
    """The process-wide shared renderer (thread-safe; its GL context is created on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = PreviewRenderer()
        return _DEFAULT


def render_motion_clip(character: Any, motion: Any, size: int | tuple[int, int] = DEFAULT_SIZE,
                       camera: Camera | None = None, view: str | float = "front",
                       renderer: PreviewRenderer | None = None) -> Iterator[np.ndarray]:
    """``(H, W, 3)`` uint8 frames of a motion: mesh mode if ``character`` is a Character, stick mode if None.

    ``size`` is (width, height), or one int for a square. ``camera`` defaults to one fixed framing of the whole
    clip (see :func:`frame_camera`); frames are produced lazily, a chunk at a time. Uses :func:`default_renderer`
    unless ``renderer`` is given.
    """
    return (renderer or default_renderer()).render_motion(character, motion, size, camera, view)


def _label(img: np.ndarray, text: str) -> None:
    import cv2

    h = img.shape[0]
    scale = max(0.4, 0.6 * h / 512)
    thick = max(1, int(round(scale * 1.8)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x, y = int(10 * scale / 0.6), int(10 * scale / 0.6) + th
    cv2.rectangle(img, (x - 5, y - th - 5), (x + tw + 5, y + base + 3), (40, 40, 46), thickness=-1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)


def side_by_side(left_frames: Iterable[np.ndarray], right_frames: Iterable[np.ndarray],
                 labels: tuple[str | None, str | None] | None = ("source", "result")) -> Iterator[np.ndarray]:
    """Frames placed left | right, each panel labelled in its top-left corner.

    The output runs until both inputs end; the shorter one holds its last frame. Panels of different heights are
    scaled to the left's height (keeping their aspect). Output width = left width + right width (after scaling).
    """
    import cv2

    labels = labels or (None, None)
    li, ri = iter(left_frames), iter(right_frames)
    last_l = last_r = None
    while True:
        nl = next(li, None)
        nr = next(ri, None)
        if nl is None and nr is None:
            return
        last_l = nl if nl is not None else last_l
        last_r = nr if nr is not None else last_r
        if last_l is None or last_r is None:
            raise ValueError("side_by_side: one of the inputs has no frames")
        lf = np.array(last_l, dtype=np.uint8, copy=True)
        rf = np.asarray(last_r, dtype=np.uint8)
        if rf.shape[0] != lf.shape[0]:
            w = max(1, int(round(rf.shape[1] * lf.shape[0] / rf.shape[0])))
            rf = cv2.resize(rf, (w, lf.shape[0]), interpolation=cv2.INTER_AREA)
        else:
            rf = rf.copy()
        if labels[0]:
            _label(lf, labels[0])
        if labels[1]:
            _label(rf, labels[1])
        out = np.concatenate([lf, rf], axis=1)
        out[:, lf.shape[1] - 1:lf.shape[1] + 1] = (70, 70, 78)  # a thin divider
        yield out


def write_before_after(path: Any, left: tuple[Any, Any], right: tuple[Any, Any],
                       fps: float | None = None, size: int | tuple[int, int] = DEFAULT_SIZE,
                       labels: tuple[str, str] = ("source", "result"), view: str | float = "front",
                       renderer: PreviewRenderer | None = None,
                       progress: Callable[[float, str], None] | None = None) -> int:
    """Write a labelled side-by-side H.264 mp4 of two ``(character or None, motion)`` pairs.

    Both panels use the same camera distance and height (the union of both clips' extents), each centred
    horizontally on its own clip, so relative sizes are honest. Motions are resampled to ``fps`` (default: the
    left motion's) so they play in sync; if their durations differ, the shorter holds its last frame.
    ``size`` is one panel's (width, height) (one int: square); the video is twice as wide. ``progress(fraction,
    what)`` is called every few frames (whatever it raises stops the video, and no file is left).

    Returns the number of frames written (see :func:`~core.render.video.write_mp4` for errors).
    """
    from .video import write_mp4

    (lc, lm), (rc, rm) = left, right
    fps = float(fps or lm.fps)
    lm = lm.resample(fps) if abs(lm.fps - fps) > 1e-9 else lm
    rm = rm.resample(fps) if abs(rm.fps - fps) > 1e-9 else rm
    size = _size(size)
    r = renderer or default_renderer()
    lc, rc = (_drawn(c) if c is not None else None for c in (lc, rc))
    # One forward kinematics per panel, shared by the framing and the rendering (a 65-joint rig's 300 frames
    # took 0.3 s a pass, and each panel made three).
    ls, rs = (_Skinner(c, m) if c is not None else None for c, m in ((lc, lm), (rc, rm)))
    lp, rp = (s.positions if s is not None else m.positions() for s, m in ((ls, lm), (rs, rm)))
    (lpts, lpad), (rpts, rpad) = clip_framing_points(lc, lm, lp, ls), clip_framing_points(rc, rm, rp, rs)
    cam_l, cam_r = frame_cameras([lpts, rpts], aspect=size[0] / size[1], view=view, pad=[lpad, rpad])
    frames = side_by_side(r.render_motion(lc, lm, size, cam_l, skinner=ls),
                          r.render_motion(rc, rm, size, cam_r, skinner=rs), labels)
    if progress is not None:
        frames = _reporting(frames, max(lm.num_frames, rm.num_frames), progress)
    return write_mp4(frames, path, fps)


def _reporting(frames: Iterable[np.ndarray], total: int, progress: Callable[[float, str], None],
               every: int = 8) -> Iterator[np.ndarray]:
    for i, frame in enumerate(frames):
        if i % every == 0:
            progress(i / max(total, 1), f"rendering: frame {i} of {total}")
        yield frame
