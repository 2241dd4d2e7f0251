import numpy as np
import pytest
import torch

from core.geometry.mesh import boundary_loops, winding_number
from core.render.preview import Camera
from core.render.soft import (SoftRasterSettings, camera_matrices, clip_cameras, mannequin, render_views,
                              soft_rasterize)
from core.skeleton import canonical_skeleton
from tests.synthetic import tpose_offsets

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _front_camera(distance: float = 3.0) -> Camera:
    return Camera(eye=np.array([0.0, 0.0, distance]), target=np.zeros(3), fov_y=40.0, near=0.1, far=10.0)


def _square(half: float = 0.5, z: float = 0.0, facing_camera: bool = True):
    v = torch.tensor([[-half, -half, z], [half, -half, z], [half, half, z], [-half, half, z]], dtype=torch.float64)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    return v, (f if facing_camera else f.flip(1))


@pytest.mark.parametrize("device", DEVICES)
def test_silhouette_colour_and_background(device):
    v, f = _square()
    view, proj = camera_matrices([_front_camera()], torch.float64, device)
    settings = SoftRasterSettings(size=32, background=(0.0, 0.0, 1.0))
    colors = torch.tensor([[1.0, 0.0, 0.0]] * 4, dtype=torch.float64, device=device)
    out = soft_rasterize(v[None].to(device), f.to(device), colors, view, proj, settings)
    assert out.rgb.shape == (1, 3, 32, 32) and out.alpha.shape == (1, 1, 32, 32)
    # (12, 12) lies inside one triangle, a few pixels from every edge; near the shared diagonal both triangles
    # are only half-sure, as in SoftRas (the colour is unaffected: it is normalised over the faces).
    assert out.alpha[0, 0, 12, 12] > 0.999 and out.alpha[0, 0, 1, 1] < 1e-3
    assert out.rgb[0, 0, 16, 16] > 0.9 and out.rgb[0, 2, 16, 16] < 0.1  # red square, headlit
    assert torch.allclose(out.rgb[0, :, 1, 1], torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64, device=device),
                          atol=1e-3)
    # A face turned away from the camera is culled (a closed mesh's silhouette comes from its front).
    back = soft_rasterize(v[None].to(device), f.flip(1).to(device), colors, view, proj, settings)
    assert back.alpha.max() < 1e-6


def test_nearer_face_wins_the_colour():
    far, f = _square(0.5, z=-0.2)
    near, _ = _square(0.25, z=0.2)
    verts = torch.cat([far, near])[None]
    faces = torch.cat([f, f + 4])
    colors = torch.tensor([[1.0, 0, 0]] * 4 + [[0, 1.0, 0]] * 4, dtype=torch.float64)
    view, proj = camera_matrices([_front_camera()], torch.float64)
    out = soft_rasterize(verts, faces, colors, view, proj, SoftRasterSettings(size=32))
    centre = out.rgb[0, :, 16, 16]
    assert centre[1] > 0.9 and centre[0] < 0.1


def test_gradcheck_vertices_and_colours():
    g = torch.Generator().manual_seed(0)
    v = torch.tensor([[-0.4, -0.3, 0.0], [0.5, -0.4, 0.1], [0.1, 0.5, -0.1], [-0.5, 0.4, 0.05]], dtype=torch.float64)
    v = (v + 0.02 * torch.randn(v.shape, generator=g, dtype=torch.float64)).requires_grad_(True)
    f = torch.tensor([[0, 1, 2], [0, 2, 3]])
    colors = torch.rand(4, 3, generator=g, dtype=torch.float64).requires_grad_(True)
    view, proj = camera_matrices([_front_camera(2.5)], torch.float64)
    settings = SoftRasterSettings(size=10, sigma=2.0, max_pairs=40)  # several chunks

    def render(verts, cols):
        out = soft_rasterize(verts[None], f, cols, view, proj, settings)
        return out.rgb, out.alpha

    assert torch.autograd.gradcheck(render, (v, colors), atol=1e-6)


def test_render_views_and_clip_cameras():
    v, f = _square()
    cams = clip_cameras(v.numpy()[None])
    front, left, right = (c.eye - c.target for c in cams)
    assert front[2] > abs(front[0]) and left[0] > abs(left[2]) and -right[0] > abs(right[2])  # +Z, +X, -X
    imgs = render_views(torch.stack([v, v + 0.1]).float(), f, torch.full((4, 3), 0.5), cams,
                        SoftRasterSettings(size=24))
    assert imgs.shape == (2, 3, 3, 24, 24)
    with pytest.raises(ValueError, match="unknown view"):
        clip_cameras(v.numpy()[None], ("top",))


def test_mannequin_is_closed_outward_and_labelled():
    sk = canonical_skeleton(tpose_offsets())
    body = mannequin(sk)
    assert boundary_loops(body.faces) == []  # every tube is capped
    rest = sk.rest_positions()
    # Midway along the left forearm is inside the mannequin, a hand's width away is not.
    mid = 0.5 * (rest[8] + rest[9])
    pts = torch.tensor(np.stack([mid, mid + [0, 0.2, 0]]))
    w = winding_number(pts, torch.as_tensor(body.rest_vertices), torch.as_tensor(body.faces))
    assert w[0] > 0.5 and w[1] < 0.5
    assert body.limb_mask.any() and (body.parts == 0).any()
