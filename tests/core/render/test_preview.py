"""Tests of the preview renderer (headless EGL) and the mp4 writer, on a home-made capsule character."""
from __future__ import annotations

import os
import threading

import cv2
import numpy as np
import pytest

from core.character import Character, PART_NAMES
from core.motion import Motion
from core.skeleton import CANONICAL_JOINTS, CANONICAL_PARENTS, canonical_skeleton
from core.render.video import VideoWriteError, probe_video, probe_video_codec, write_mp4

# A 1.75 m T-pose on the canonical skeleton: facing +Z, left = +X, feet on y = 0.
OFFSETS = {
    "Hips": (0, 0.95, 0), "Spine": (0, 0.10, 0), "Spine1": (0, 0.12, 0), "Spine2": (0, 0.12, 0),
    "Neck": (0, 0.15, 0), "Head": (0, 0.10, 0),
    "LeftShoulder": (0.06, 0.10, 0), "LeftArm": (0.12, 0, 0), "LeftForeArm": (0.27, 0, 0), "LeftHand": (0.25, 0, 0),
    "RightShoulder": (-0.06, 0.10, 0), "RightArm": (-0.12, 0, 0), "RightForeArm": (-0.27, 0, 0),
    "RightHand": (-0.25, 0, 0),
    "LeftUpLeg": (0.10, -0.05, 0), "LeftLeg": (0, -0.42, 0), "LeftFoot": (0, -0.40, 0), "LeftToeBase": (0, -0.05, 0.13),
    "RightUpLeg": (-0.10, -0.05, 0), "RightLeg": (0, -0.42, 0), "RightFoot": (0, -0.40, 0),
    "RightToeBase": (0, -0.05, 0.13),
}
LEFT_HAND_RGB = (0.1, 0.3, 1.0)   # blue left hand, to check the image's handedness
NOSE_RGB = (1.0, 0.1, 0.1)        # red nose on the +Z side of the head


def _capsule(a: np.ndarray, b: np.ndarray, radius: float, rings: int, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Capsule around segment a-b: ((N, 3) vertices, (F, 3) counter-clockwise faces)."""
    axis = b - a
    length = float(np.linalg.norm(axis))
    z = axis / length if length > 1e-9 else np.array([0.0, 1.0, 0.0])
    helper = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    th = np.linspace(0, np.pi, rings + 1)  # from the +z pole down
    ph = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    s, c = np.sin(th)[:, None], np.cos(th)[:, None]
    local = np.stack([s * np.cos(ph), s * np.sin(ph), np.repeat(c, segments, 1)], -1).reshape(-1, 3) * radius
    local[:, 2] += np.where(local[:, 2] > 0, length / 2, -length / 2) * (np.abs(local[:, 2]) > 1e-12)
    verts = 0.5 * (a + b) + local @ np.stack([x, y, z])
    faces = []
    for i in range(rings):
        for k in range(segments):
            k2 = (k + 1) % segments
            p, q, r, t = i * segments + k, i * segments + k2, (i + 1) * segments + k, (i + 1) * segments + k2
            faces += [(p, r, q), (q, r, t)]
    return verts, np.asarray(faces)


def make_test_character(rings: int = 10, segments: int = 12) -> Character:
    """A capsule person, each capsule rigidly bound to its bone's parent joint; ~rings*segments*2*23 faces."""
    sk = canonical_skeleton(np.array([OFFSETS[n] for n in CANONICAL_JOINTS], dtype=float))
    rest = sk.rest_positions()
    verts, faces, bind, parts, colors = [], [], [], [], []
    part_of = lambda n: ("head" if n in ("Neck", "Head") else "arm" if "Arm" in n or "Hand" in n or "Shoulder" in n
                         else "leg" if "Leg" in n or "Foot" in n or "Toe" in n else "torso")

    def add(v, f, joint, part, color):
        faces.append(f + sum(len(x) for x in verts))
        verts.append(v)
        bind.append(np.full(len(v), joint))
        parts.append(np.full(len(v), PART_NAMES.index(part)))
        colors.append(np.tile(color, (len(v), 1)))

    for j in range(1, 22):
        p = CANONICAL_PARENTS[j]
        name = CANONICAL_JOINTS[p]
        radius = 0.09 if part_of(name) == "torso" else 0.05 if "Leg" in name else 0.04
        color = (0.35, 0.68, 0.42) if part_of(name) == "torso" else (0.85, 0.7, 0.6)
        v, f = _capsule(rest[p], rest[j], radius, rings, segments)
        add(v, f, p, part_of(name), color)
    head = CANONICAL_JOINTS.index("Head")
    hand = CANONICAL_JOINTS.index("LeftHand")
    v, f = _capsule(rest[head] + [0, 0.06, 0], rest[head] + [0, 0.14, 0], 0.1, rings, segments)
    add(v, f, head, "head", (0.9, 0.75, 0.62))
    v, f = _capsule(rest[head] + [0, 0.09, 0.09], rest[head] + [0, 0.09, 0.12], 0.025, rings, segments)
    add(v, f, head, "head", NOSE_RGB)
    v, f = _capsule(rest[hand], rest[hand] + [0.1, 0, 0], 0.045, rings, segments)
    add(v, f, hand, "arm", LEFT_HAND_RGB)
    V = sum(len(x) for x in verts)
    idx = np.zeros((V, 4), np.int64)
    idx[:, 0] = np.concatenate(bind)
    w = np.zeros((V, 4))
    w[:, 0] = 1
    return Character("capsule", sk, np.concatenate(verts), np.concatenate(faces), idx, w, np.concatenate(parts),
                     np.concatenate(colors))


def _quat_axis_angle(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    angle = np.asarray(angle, float)[..., None]
    return np.concatenate([np.cos(angle / 2), np.sin(angle / 2) * axis], axis=-1)


def make_test_motion(character: Character, frames: int = 24, walk: float = 0.6, fps: float = 30.0) -> Motion:
    """Arms waving, walking `walk` metres along +X over the clip."""
    T = frames
    rot = np.zeros((T, 22, 4))
    rot[..., 0] = 1
    t = np.linspace(0, 1, T)
    rot[:, CANONICAL_JOINTS.index("LeftArm")] = _quat_axis_angle([0, 0, 1], 0.6 * np.sin(2 * np.pi * t))
    rot[:, CANONICAL_JOINTS.index("RightArm")] = _quat_axis_angle([0, 0, 1], -0.9 + 0.3 * np.sin(2 * np.pi * t))
    rot[:, CANONICAL_JOINTS.index("LeftUpLeg")] = _quat_axis_angle([1, 0, 0], 0.4 * np.sin(2 * np.pi * t))
    root = np.tile(character.skeleton.offsets[0], (T, 1))
    root[:, 0] += walk * t
    return Motion(character.skeleton, rot, root, fps, "wave")


@pytest.fixture(scope="module")
def renderer():
    from core.render.preview import PreviewRenderer, PreviewRendererUnavailable

    r = PreviewRenderer()
    try:
        r.info
    except PreviewRendererUnavailable as exc:
        pytest.skip(str(exc))
    yield r
    r.release()


@pytest.fixture(scope="module")
def character():
    return make_test_character()


def _background_mask(img: np.ndarray, renderer, size, camera, motion) -> np.ndarray:
    """Pixels that differ from an empty scene (sky + floor) rendered with the same camera and scale."""
    from core.render.preview import _clip_scale

    empty = next(renderer.render_mesh([np.zeros((1, 3, 3), np.float32) + 1e3], np.array([[0, 1, 2]]), None, camera,
                                      size, scale=_clip_scale(motion.positions())))
    return np.abs(img.astype(int) - empty.astype(int)).sum(axis=2) > 30


# ------------------------------------------------------------------------------------------------------------
# Camera framing
# ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["front", "side", "three_quarter"])
@pytest.mark.parametrize("aspect", [1.0, 16 / 9, 0.6])
def test_frame_camera_keeps_every_point_in_view(view, aspect):
    from core.render.preview import frame_camera

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(40, 25, 3)) * [0.4, 0.5, 0.3] + [0, 1, 0]
    pts[:, :, 0] += np.linspace(-2, 3, 40)[:, None]  # travels 5 m
    size = (int(round(400 * aspect)), 400)
    cam = frame_camera(pts, aspect=size[0] / size[1], view=view)
    px, depth = cam.project(pts, size)
    assert (depth > cam.near).all()
    assert (px[..., 0] >= 0).all() and (px[..., 0] <= size[0]).all()
    assert (px[..., 1] >= 0).all() and (px[..., 1] <= size[1]).all()
    # centred and reasonably tight: the projected box fills most of one dimension
    lo, hi = px.reshape(-1, 2).min(0), px.reshape(-1, 2).max(0)
    centre = (lo + hi) / 2
    assert abs(centre[0] - size[0] / 2) < 0.03 * size[0] and abs(centre[1] - size[1] / 2) < 0.03 * size[1]
    assert max((hi - lo)[0] / size[0], (hi - lo)[1] / size[1]) > 0.8


def test_front_camera_is_on_plus_z_and_left_is_image_right():
    from core.render.preview import frame_camera

    pts = np.array([[[0, 0, 0], [0, 1.8, 0], [0.5, 1, 0], [-0.5, 1, 0]]], float)
    cam = frame_camera(pts, view="front")
    assert cam.eye[2] > 1 and cam.eye[1] > cam.target[1]  # +Z side, slightly from above
    px, _ = cam.project(pts[0], (512, 512))
    assert px[2, 0] > px[3, 0]  # +X (the character's left) on the image's right
    assert px[1, 1] < px[0, 1]  # head above feet


def test_shared_cameras_have_equal_scale():
    from core.render.preview import frame_cameras

    small = np.array([[[0, 0, 0], [0, 1.0, 0], [0.3, 0.6, 0], [-0.3, 0.6, 0]]], float)
    big = small * 2 + [5, 0, 0]
    a, b = frame_cameras([small, big], aspect=1.0)
    assert np.isclose(np.linalg.norm(a.eye - a.target), np.linalg.norm(b.eye - b.target))
    ha = np.ptp(a.project(small[0], (512, 512))[0][:, 1])
    hb = np.ptp(b.project(big[0], (512, 512))[0][:, 1])
    assert 1.8 < hb / ha < 2.2  # twice as tall in the image too
    for cam, pts in ((a, small), (b, big)):
        px, _ = cam.project(pts, (512, 512))
        assert (px >= 0).all() and (px <= 512).all()
        assert abs(px[..., 0].min() + px[..., 0].max() - 512) < 20  # each centred horizontally


# ------------------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------------------

def test_vertex_normals_point_outwards(character):
    from core.render.preview import vertex_normals

    v = character.rest_vertices
    n = vertex_normals(v, character.faces)
    assert n.shape == v.shape and n.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1, atol=1e-4)
    batched = vertex_normals(np.stack([v, v + 1]), character.faces)
    np.testing.assert_allclose(batched[0], n, atol=1e-5)
    np.testing.assert_allclose(batched[1], n, atol=1e-4)
    # the head capsule: normals point away from its centre
    head = character.parts == PART_NAMES.index("head")
    centre = v[head].mean(0)
    assert (np.einsum("ij,ij->i", n[head], v[head] - centre) > -0.05).mean() > 0.8


def test_fast_skinning_matches_character(character):
    from core.render.preview import _Skinner, vertex_normals

    motion = make_test_motion(character, frames=40)
    sk = _Skinner(character, motion)
    ours = np.concatenate(list(sk.chunks(normals=True)))
    ref = character.posed_vertices(motion).numpy()
    np.testing.assert_allclose(ours[..., :3], ref, atol=1e-5)
    np.testing.assert_allclose(sk.positions, motion.positions(), atol=1e-9)
    # rigidly bound capsules: turned rest normals equal the posed mesh's own normals
    exact = vertex_normals(ref[5], character.faces)
    assert np.einsum("ij,ij->i", ours[5, :, 3:], exact).min() > 0.999
    other = make_test_motion(character)
    other.skeleton = canonical_skeleton(character.skeleton.offsets * 2)
    object.__setattr__(other.skeleton, "names", tuple(n + "_x" for n in other.skeleton.names))
    with pytest.raises(ValueError, match="another skeleton"):
        _Skinner(character, other)


def test_mesh_mode_renders_upright_character_facing_camera(renderer, character):
    from core.render.preview import clip_framing_points, frame_camera

    motion = make_test_motion(character, frames=8, walk=0.0)
    size = (320, 256)
    pts, pad = clip_framing_points(character, motion)
    cam = frame_camera(pts, aspect=size[0] / size[1], pad=pad)
    frames = list(renderer.render_motion(character, motion, size, cam))
    assert len(frames) == 8
    img = frames[0]
    assert img.shape == (256, 320, 3) and img.dtype == np.uint8
    mask = _background_mask(img, renderer, size, cam, motion)
    frac = mask.mean()
    assert 0.04 < frac < 0.7, frac
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() - size[0] / 2) < 0.15 * size[0]
    assert abs((ys.min() + ys.max()) / 2 - size[1] / 2) < 0.15 * size[1]
    assert ys.max() - ys.min() > 0.6 * size[1]  # the whole body spans most of the height
    # the red nose is visible (the face is towards the camera) and in the upper part of the image
    nose = (img[..., 0] > 150) & (img[..., 1] < 90) & (img[..., 2] < 90)
    assert nose.sum() > 3
    assert np.nonzero(nose)[0].mean() < ys.min() + 0.25 * (ys.max() - ys.min())
    # the blue left hand is on the image's right
    blue = (img[..., 2] > 150) & (img[..., 0] < 90)
    assert blue.sum() > 3 and np.nonzero(blue)[1].mean() > size[0] / 2
    # shaded, not flat: the body shows a range of brightness
    lum = img[mask].mean(axis=1)
    assert lum.std() > 8


def test_mesh_framing_contains_every_vertex_of_every_frame(character):
    from core.render.preview import clip_framing_points, frame_camera

    motion = make_test_motion(character, frames=30, walk=2.0)
    for view in ("front", "side", "three_quarter"):
        pts, pad = clip_framing_points(character, motion)
        cam = frame_camera(pts, aspect=4 / 3, view=view, pad=pad)
        px, depth = cam.project(character.posed_vertices(motion).numpy(), (400, 300))
        assert (depth > cam.near).all()
        assert (px >= 0).all() and (px[..., 0] <= 400).all() and (px[..., 1] <= 300).all()


def test_floor_hides_what_is_below_it(renderer, character):
    from core.render.preview import clip_framing_points, frame_camera

    motion = make_test_motion(character, frames=1, walk=0.0)
    size = (128, 128)
    cam = frame_camera(*clip_framing_points(character, motion)[:1], aspect=1.0)
    sunk = Motion(motion.skeleton, motion.rotations, motion.root_positions - [0, 3.0, 0], motion.fps)
    img = next(renderer.render_motion(character, sunk, size, cam))
    assert not _background_mask(img, renderer, size, cam, sunk).any()
    img = next(renderer.render_motion(None, sunk, size, cam))
    assert not _background_mask(img, renderer, size, cam, sunk).any()


def test_missing_egl_gives_an_actionable_error(monkeypatch):
    import moderngl

    from core.render.preview import PreviewRenderer, PreviewRendererUnavailable

    def no_egl(*args, **kwargs):
        raise Exception("libEGL.so.1: cannot open shared object file")

    monkeypatch.setattr(moderngl, "create_standalone_context", no_egl)
    r = PreviewRenderer()
    with pytest.raises(PreviewRendererUnavailable, match="libegl1") as info:
        r.info
    assert "libEGL.so.1" in str(info.value)
    r.release()


def test_default_camera_and_motion_frames_differ(renderer, character):
    from core.render.preview import render_motion_clip

    motion = make_test_motion(character, frames=40, walk=1.0)
    frames = list(render_motion_clip(character, motion, size=(128, 128), renderer=renderer))
    assert len(frames) == 40  # more than one chunk
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).sum() > 0


def test_stick_mode(renderer, character):
    from core.render.preview import LEFT_COLOR, RIGHT_COLOR, render_motion_clip

    motion = make_test_motion(character, frames=5)
    frames = list(render_motion_clip(None, motion, size=(201, 239), renderer=renderer))  # odd sizes work
    assert len(frames) == 5 and frames[0].shape == (239, 201, 3)
    img = frames[0].astype(int)

    def near(color):
        return (np.abs(img - np.array(color) * 255).max(axis=2) < 60).nonzero()[1]

    left_x, right_x = near(LEFT_COLOR), near(RIGHT_COLOR)
    assert len(left_x) > 20 and len(right_x) > 20
    assert left_x.mean() > right_x.mean()  # the character's left on the image's right


def test_stick_mode_skips_missing_joints(renderer, character):
    from core.render.preview import frame_camera

    motion = make_test_motion(character, frames=2)
    P = motion.positions()
    cam = frame_camera(P, aspect=1.0)
    holes = P.copy()
    holes[:, 5:, :] = np.nan  # only the trunk is known
    full = next(renderer.render_skeleton(P, motion.skeleton.parents, cam, (128, 128)))
    part = next(renderer.render_skeleton(holes, motion.skeleton.parents, cam, (128, 128)))
    assert np.isfinite(part).all() and 0 < np.abs(part.astype(int) - full).sum()


def test_joint_sides():
    from core.render.preview import joint_sides

    names = ["Hips", "LeftArm", "mixamorig:RightHand", "lShldr", "rThigh", "CC_Base_L_Upperarm", "hand_r",
             "UpperArm.L", "Spine", "Head"]
    assert list(joint_sides(names)) == [0, 1, -1, 1, -1, 1, -1, 1, 0, 0]
    rest = np.array([[0, 1, 0], [0.3, 1.4, 0], [-0.3, 1.4, 0]])
    assert list(joint_sides(["a", "b", "c"], rest)) == [0, 1, -1]


def test_renderer_reusable_and_thread_safe(character):
    from core.render.preview import PreviewRenderer, render_motion_clip

    motion = make_test_motion(character, frames=3)
    r = PreviewRenderer(samples=0)
    first = list(render_motion_clip(None, motion, size=(64, 64), renderer=r))
    r.release()
    r.release()
    again = list(render_motion_clip(None, motion, size=(64, 64), renderer=r))  # a fresh context after release
    np.testing.assert_array_equal(first[0], again[0])
    results: dict[int, list] = {}

    def job(k: int) -> None:
        results[k] = list(render_motion_clip(character if k % 2 else None, motion, size=(64, 64), renderer=r))

    threads = [threading.Thread(target=job, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(results[k]) == 3 for k in range(4))
    np.testing.assert_array_equal(results[0][0], first[0])
    np.testing.assert_array_equal(results[1][0], results[3][0])
    # an abandoned generator releases its GL objects
    gen = render_motion_clip(character, motion, size=(64, 64), renderer=r)
    next(gen)
    gen.close()
    r._call(lambda: None)  # let the release run
    assert not r._scenes
    r.release()


# ------------------------------------------------------------------------------------------------------------
# Video
# ------------------------------------------------------------------------------------------------------------

def _frames(n: int, h: int, w: int):
    for k in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, : (k * 7) % w] = (200, 60, 30)
        yield img


def _count_frames(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.mark.parametrize("size", [(64, 48), (63, 37)])
def test_write_mp4_h264_yuv420p(tmp_path, size):
    w, h = size
    path = tmp_path / "clip.mp4"
    assert write_mp4(_frames(17, h, w), path, fps=25) == 17
    info = probe_video(path)
    assert probe_video_codec(path) == "h264"
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert (info.width, info.height) == (w + w % 2, h + h % 2)
    assert info.fps == pytest.approx(25)
    assert _count_frames(path) == 17 and info.frames == 17
    assert os.listdir(tmp_path) == ["clip.mp4"]
    with open(path, "rb") as fh:  # +faststart: the moov atom comes before mdat
        head = fh.read(4096)
    assert b"moov" in head


def test_write_mp4_atomic_on_failure(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"old")

    def broken():
        yield from _frames(3, 32, 32)
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError, match="source failed"):
        write_mp4(broken(), path, fps=10)
    assert os.listdir(tmp_path) == ["clip.mp4"] and path.read_bytes() == b"old"

    def bad_size():
        yield np.zeros((32, 32, 3), np.uint8)
        yield np.zeros((30, 32, 3), np.uint8)

    with pytest.raises(ValueError, match="differs"):
        write_mp4(bad_size(), path, fps=10)
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(iter(()), path, fps=10)
    with pytest.raises(VideoWriteError):
        write_mp4(_frames(2, 32, 32), tmp_path / "missing" / "x.mp4", fps=10)
    assert os.listdir(tmp_path) == ["clip.mp4"] and path.read_bytes() == b"old"


@pytest.mark.parametrize("frames", [2, 60])
def test_write_mp4_ffmpeg_failure_is_reported_and_cleaned_up(tmp_path, frames):
    with pytest.raises(VideoWriteError, match="ffmpeg failed"):
        write_mp4(_frames(frames, 32, 32), tmp_path / "clip.mp4", fps=10, preset="no-such-preset")
    assert os.listdir(tmp_path) == []


def test_side_by_side_dims():
    from core.render.preview import side_by_side

    left = [np.full((60, 80, 3), 10, np.uint8)] * 3
    right = [np.full((60, 50, 3), 200, np.uint8)] * 5
    out = list(side_by_side(left, right, labels=("source", "result")))
    assert len(out) == 5 and all(f.shape == (60, 130, 3) for f in out)
    assert (out[-1][-1, :70] == 10).all() and (out[-1][-1, 90:] == 200).all()
    tall = [np.full((120, 50, 3), 200, np.uint8)]
    assert next(side_by_side(left, tall, labels=None)).shape == (60, 105, 3)


def test_write_before_after(tmp_path, renderer, character):
    from core.render.preview import write_before_after

    src = make_test_motion(character, frames=12, fps=30)
    slow = make_test_motion(character, frames=6, fps=15)
    path = tmp_path / "ba.mp4"
    n = write_before_after(path, (None, src), (character, slow), size=(96, 128), renderer=renderer)
    assert n == 12
    info = probe_video(path)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 192, 128)
    assert _count_frames(path) == 12
    write_before_after(path, (character, src), (None, src), size=64, renderer=renderer)  # one int: square panels
    assert (probe_video(path).width, probe_video(path).height) == (128, 64)


def test_dense_character_is_drawn_from_clusters_that_keep_its_colours(renderer, monkeypatch):
    """Above PREVIEW_MAX_VERTICES the previews draw a vertex-clustered copy: few enough vertices, no cluster
    mixing two of the character's colours (the red nose stays red), and the frame looks like the full mesh's."""
    import core.render.preview as preview

    dense = make_test_character(rings=40, segments=60)
    assert len(dense.rest_vertices) > preview.PREVIEW_MAX_VERTICES
    drawn = preview._drawn(dense)
    assert len(drawn.rest_vertices) <= preview.PREVIEW_MAX_VERTICES
    palette = np.unique(np.asarray(dense.colors), axis=0)
    nearest = np.abs(np.asarray(drawn.colors)[:, None] - palette[None]).max(-1).min(1)
    assert nearest.max() < 1e-6  # every cluster's colour is one of the originals, not an average of two
    motion = make_test_motion(dense, frames=2)
    cam = preview.frame_camera(preview.clip_framing_points(dense, motion)[0], aspect=1.0)
    small = next(renderer.render_motion(dense, motion, 128, cam))
    monkeypatch.setattr(preview, "PREVIEW_MAX_VERTICES", len(dense.rest_vertices))
    preview._drawn.cache_clear()
    full = next(renderer.render_motion(dense, motion, 128, cam))
    preview._drawn.cache_clear()
    diff = np.abs(full.astype(int) - small.astype(int)).max(-1)
    assert diff.mean() < 2.0 and (diff > 30).mean() < 0.02  # grey levels of 255; measured 0.5 and 0.2 %
