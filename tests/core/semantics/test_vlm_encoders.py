"""BLIP-2 and CLIP encoders on tiny random models built from configs (nothing is downloaded)."""
import numpy as np
import pytest
import torch

from core.kinematics import forward_kinematics, linear_blend_skinning, skinning_transforms
from core.render.soft import SoftRasterSettings, clip_cameras, mannequin, render_views
from core.rotations import matrix_to_rot6d, rot6d_to_matrix
from core.semantics import select_supervisor
from core.semantics.base import frames_to_tensor
from core.semantics.blip2 import Blip2Encoder
from core.semantics.clip import ClipEncoder
from core.skeleton import canonical_skeleton
from core.semantics.tiny_models import tiny_blip2, tiny_clip, tiny_tokenizer
from tests.synthetic import tpose_offsets


@pytest.fixture(scope="module")
def blip2():
    return Blip2Encoder(tiny_blip2(), tiny_tokenizer(), "tiny BLIP-2", num_beams=2, max_answer_tokens=4)


@pytest.fixture(scope="module")
def clip():
    return ClipEncoder(tiny_clip(), "tiny CLIP")


def _grad_through_render_to_angles(encoder) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint angles (6D) → FK → skinning → soft render → encoder: the gradient of the embedding reaches the angles."""
    sk = canonical_skeleton(tpose_offsets())
    body = mannequin(sk)
    rest = sk.rest_pose(torch.float32)
    x6 = matrix_to_rot6d(torch.eye(3).expand(2, 22, 3, 3)).clone().requires_grad_(True)
    pose = forward_kinematics(sk.parents, torch.as_tensor(sk.offsets, dtype=torch.float32), rot6d_to_matrix(x6),
                              torch.as_tensor(sk.offsets[0], dtype=torch.float32))
    verts = linear_blend_skinning(torch.as_tensor(body.rest_vertices, dtype=torch.float32),
                                  body.dense_weights(), skinning_transforms(pose, rest))
    cams = clip_cameras(body.rest_vertices[None], ("front",))
    images = render_views(verts, torch.as_tensor(body.faces), torch.full((len(body.rest_vertices), 3), 0.7), cams,
                          SoftRasterSettings(size=48)).flatten(0, 1)
    images.retain_grad()
    e = encoder.embed_renders(images, ["hands up"] * 2)
    (e ** 2).sum().backward()
    return images.grad, x6.grad


@pytest.mark.parametrize("which", ["blip2", "clip"])
def test_embedding_gradient_reaches_render_and_joint_angles(which, request):
    encoder = request.getfixturevalue(which)
    image_grad, angle_grad = _grad_through_render_to_angles(encoder)
    assert image_grad.abs().sum() > 0
    assert angle_grad.abs().sum() > 0
    arms = [7, 8, 11, 12]  # the arm joints move visible tubes
    assert angle_grad[:, arms].abs().sum() > 0


def test_blip2_guiding_vqa_and_shapes(blip2):
    images = torch.rand(3, 3, 40, 40)
    answers = blip2.guiding_context(images)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    e = blip2.embed_renders(images, answers)
    assert e.shape == (3, 32) and e.dtype == torch.float32
    assert torch.allclose(blip2.embed_renders(images), e, atol=1e-5)  # the same answers when computed inside
    with pytest.raises(ValueError, match="guiding answers"):
        blip2.embed_renders(images, ["one"])


def test_source_frames_are_embedded_once(clip, monkeypatch):
    frames = (np.random.default_rng(0).random((5, 30, 50, 3)) * 255).astype(np.uint8)  # non-square video frames
    assert frames_to_tensor(frames).shape == (5, 3, 224, 224)
    calls = []
    original = clip.embed_renders
    monkeypatch.setattr(clip, "embed_renders", lambda x, c=None: calls.append(len(x)) or original(x, c))
    e1, ctx = clip.embed_source_frames(frames, key="clip-test", batch=2)
    e2, _ = clip.embed_source_frames(frames, key="clip-test")
    assert e1.shape == (5, 8) and len(ctx) == 5 and torch.equal(e1, e2) and sum(calls) == 5


@pytest.mark.parametrize("kind", ["blip2", "clip"])
def test_loading_from_a_folder(kind, tmp_path, monkeypatch):
    model = tiny_blip2() if kind == "blip2" else tiny_clip()
    model.save_pretrained(tmp_path)
    if kind == "blip2":
        tiny_tokenizer().save_pretrained(tmp_path)
    monkeypatch.delenv("SMT_VLM_PATH", raising=False)
    sup = select_supervisor(tmp_path)
    assert isinstance(sup.encoder, Blip2Encoder if kind == "blip2" else ClipEncoder), sup.description
    assert str(tmp_path) in sup.description
    images = torch.rand(2, 3, 32, 32)
    reference = (Blip2Encoder(model, tiny_tokenizer(), "x") if kind == "blip2" else ClipEncoder(model, "x"))
    ctx = ["left"] * 2
    assert torch.allclose(sup.encoder.embed_renders(images, ctx), reference.embed_renders(images, ctx), atol=1e-5)
    monkeypatch.setenv("SMT_VLM_PATH", str(tmp_path))  # the environment variable works the same
    assert type(select_supervisor().encoder) is type(sup.encoder)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (fp16 path)")
def test_blip2_fp16_on_cuda(tmp_path):
    tiny_blip2().save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    enc = Blip2Encoder.load(tmp_path, "cuda")
    assert enc.dtype == torch.float16
    images = torch.rand(2, 3, 32, 32, device="cuda", requires_grad=True)
    e = enc.embed_renders(images, ["up", "up"])
    e.sum().backward()
    assert e.dtype == torch.float32 and images.grad.abs().sum() > 0


def test_a_lazy_frame_source_is_read_batch_by_batch_at_the_models_resolution(clip):
    class Crops:  # what pose.crops.VideoCrops offers: len, key, batches(size, batch)
        key = ("crops", "test")

        def __init__(self) -> None:
            self.frames = (np.random.default_rng(1).random((5, 32, 32, 3)) * 255).astype(np.uint8)
            self.asked: list[tuple[int, int]] = []

        def __len__(self) -> int:
            return len(self.frames)

        def batches(self, size, batch):
            self.asked.append((size, batch))
            for s in range(0, len(self.frames), batch):
                yield self.frames[s:s + batch]

    crops = Crops()
    e, ctx = clip.embed_source_frames(crops, batch=2)
    assert crops.asked == [(clip.image_size, 2)] and e.shape == (5, 8) and len(ctx) == 5
    expected, _ = clip.embed_source_frames(crops.frames)  # the same frames as an array
    assert torch.allclose(e, expected, atol=1e-5)
    clip.embed_source_frames(crops)
    assert len(crops.asked) == 1  # cached under the source's key
