"""The semantic consistency term of stage II (paper Eq. 10): the supervisor's embedding of the character's pose
kept near its embedding of the source's, for the skeletal supervisor and for image encoders (BLIP-2, CLIP).

A term is called as ``term(posed, step) -> loss`` (a scalar tensor) and reports per frame with
``term.distances(posed) -> (frames (N,), values (N,))``.
"""
from __future__ import annotations

import math
from typing import Callable, Protocol

import numpy as np
import torch
from torch import Tensor

from ..kinematics import linear_blend_skinning
from ..geometry.mesh import farthest_points
from ..metrics import SourceClip, frechet_distance
from ..render.soft import camera_matrices, soft_rasterize
from ..semantics.skeletal import FigureProxy, SkeletalEncoder
from .posing import Posed
from .request import Request
from .result import SemanticMetrics

__all__ = ["SemanticTerm", "SkeletalTerm", "ImageTerm", "semantic_term"]


class SemanticTerm(Protocol):
    def __call__(self, posed: Posed, step: int) -> Tensor: ...

    def distances(self, posed: Posed) -> tuple[np.ndarray, np.ndarray]: ...


def semantic_term(supervisor, request: Request, source: SourceClip, character_proxy: FigureProxy,
                  progress: Callable[[float, str], None] | None = None) -> SemanticTerm:
    """The λ_sem term for the supervisor (a :class:`SkeletalEncoder` or a
    :class:`~core.semantics.base.SemanticEncoder`), ``source`` being ``request.source`` measured.

    Skeletal: squared distance of the per-frame embeddings, averaged over frames. Image encoders: each step
    renders ``frames_per_step`` random frames of the character from the front, left and right against renders
    of the source skeleton (a motion file), or from the video's camera against the video's frames plus
    ``video_side_views`` (a video source; see :class:`ImageTerm`), embeds them with the same guiding answers as
    the source frames and averages the squared distance per embedding dimension (the scale of a VLM's features
    is its own, so λ_sem means the same for any model width), summed over views. ``progress`` hears how far
    embedding the source frames is (fraction, what).
    """
    if getattr(supervisor, "kind", None) == "skeleton":
        positions = source.positions.to(dtype=torch.float32, device=request.device)
        return SkeletalTerm(supervisor, positions, source.proxy, character_proxy)
    return ImageTerm(supervisor, request, progress)


class SkeletalTerm:
    """Semantic consistency of skeletal embeddings (see :func:`semantic_term`).

    source_positions: ``(T, 22, 3)`` the source's canonical joint positions, in the optimiser's dtype.
    """

    def __init__(self, encoder: SkeletalEncoder, source_positions: Tensor, source_proxy: FigureProxy,
                 target_proxy: FigureProxy) -> None:
        self.encoder, self.target_proxy = encoder, target_proxy
        with torch.no_grad():
            self.source_emb = encoder.embed(source_positions, source_proxy)

    def per_frame(self, posed: Posed) -> Tensor:
        """``(T,)`` squared embedding distances."""
        return ((self.encoder.embed(posed.positions, self.target_proxy, posed.body_gap) - self.source_emb) ** 2).sum(-1)

    def __call__(self, posed: Posed, step: int) -> Tensor:
        return self.per_frame(posed).mean()

    def distances(self, posed: Posed) -> tuple[np.ndarray, np.ndarray]:
        values = self.per_frame(posed).cpu().double().numpy()
        return np.arange(len(values)), values


class ImageTerm:
    """Semantic consistency through renders and an image encoder (see :func:`semantic_term`).

    Views, each a source embedding per frame and a camera per frame for the character's render:

    * a video source (``request.source_frames``): its frames (crops around the person) against the character seen
      the way the video saw the person (``request.source_camera``: a per-frame
      :class:`~core.render.framing.VideoView`, or one fixed preview camera), plus ``config.video_side_views``;
    * otherwise: renders of a mannequin of the source skeleton from the front, left and right, against the
      character from the same three views.

    source_emb: ``(T, C, D)``; source_ctx: per frame, the C guiding answers; view, proj: ``(T, C, 4, 4)``.
    description: where the source embeddings came from, in words.
    """

    def __init__(self, encoder, request: Request, progress: Callable[[float, str], None] | None = None) -> None:
        from ..render.soft import SoftRasterSettings, clip_cameras

        character, start, device = request.character, request.start, request.device
        self.encoder, self.config, self.device = encoder, request.config, device
        self.settings = SoftRasterSettings()
        self.faces = torch.as_tensor(character.faces, device=device)
        colors = character.colors if character.colors is not None else np.full((len(character.rest_vertices), 3), 0.75)
        self.colors = torch.as_tensor(colors, dtype=torch.float32, device=device)
        self.rest = torch.as_tensor(character.rest_vertices, dtype=torch.float32, device=device)
        self.weights = character.dense_weights(torch.float32).to(device)
        self.generator = torch.Generator().manual_seed(0)
        T = start.num_frames
        with torch.no_grad():  # about 30 poses frame the clip; posing every frame of a long clip costs GBs
            target_points = character.posed_vertices(start.every(max(1, T // 30)))[:, ::10].numpy()
        groups: list[tuple[Tensor, list[list[str]], list[list]]] = []  # (emb (T, c, D), contexts, cameras (T x c))
        said: list[str] = []
        side_views: tuple[str, ...] = ("front", "left", "right")
        if request.source_frames is not None:  # a video: its frames, the character seen from the video's camera
            emb, ctx = encoder.embed_source_frames(request.source_frames, progress=progress)
            if len(emb) != T:
                raise ValueError(f"{len(emb)} source frames for a {T}-frame motion")
            cams = self._video_cameras(request, target_points)
            groups.append((emb[:, None], [[c] for c in ctx], [[c] for c in cams]))
            lazy = hasattr(request.source_frames, "batches")
            said.append("video frames (square crops around the person), seen by the character from the video's "
                        "camera" if lazy else "video frames, seen by the character from the video's camera")
            side_views = tuple(self.config.video_side_views)
        if side_views:
            emb, ctx = self._mannequin_embeddings(request, side_views)
            cams = clip_cameras(target_points, side_views)
            groups.append((emb, ctx, [cams] * T))
            said.append(f"renders of the source ({', '.join(side_views)})")
        self.description = " + ".join(said)
        self.source_emb = torch.cat([g[0] for g in groups], dim=1).to(device)
        self.source_ctx = [sum((g[1][t] for g in groups), []) for t in range(T)]
        cameras = [sum((g[2][t] for g in groups), []) for t in range(T)]
        self.view, self.proj = (m.reshape(T, -1, 4, 4) for m in camera_matrices(
            [c for row in cameras for c in row], torch.float32, device))

    @staticmethod
    def _video_cameras(request: Request, target_points: np.ndarray) -> list:
        """Per frame, the camera that sees the character as the video saw the person."""
        from ..render.soft import clip_cameras

        camera, start = request.source_camera, request.start
        if hasattr(camera, "cameras"):  # a VideoView: framed on the character's own mesh, frame by frame
            character = request.character
            keep = torch.as_tensor(farthest_points(character.rest_vertices, 256))
            points = []
            with torch.no_grad():  # a few hundred vertices a frame, posed 64 frames at a time
                for s in range(0, start.num_frames, 64):
                    points.append(character.posed_vertices(start.slice(s, s + 64))[:, keep].numpy())
            return camera.cameras(np.concatenate(points))
        return [camera if camera is not None else clip_cameras(target_points, ("front",))[0]] * start.num_frames

    def _mannequin_embeddings(self, request: Request, views: tuple[str, ...]) -> tuple[Tensor, list[list[str]]]:
        """``(T, len(views), D)`` embeddings of a mannequin of the source skeleton, each view framing the whole
        clip, and the guiding answers per frame."""
        from ..render.soft import clip_cameras, mannequin, render_views

        source, encoder, device, T = request.source, self.encoder, self.device, request.start.num_frames
        body = mannequin(source.skeleton)
        with torch.no_grad():
            src_points = body.posed_vertices(source)[:: max(1, T // 30), ::5].numpy()
        src_cams = clip_cameras(src_points, views)
        faces = torch.as_tensor(body.faces, device=device)
        cols = torch.as_tensor(body.colors, dtype=torch.float32, device=device)
        embs, ctxs = [], []
        for s in range(0, T, 8):
            with torch.no_grad():
                verts = body.posed_vertices(source.slice(s, s + 8)).float().to(device)
                images = render_views(verts, faces, cols, src_cams, self.settings).flatten(0, 1)
            e, c = encoder.embed_source_frames(images, key=("mannequin", id(source), s, views))
            embs.append(e.reshape(verts.shape[0], len(src_cams), -1))
            ctxs += [c[i:i + len(src_cams)] for i in range(0, len(c), len(src_cams))]
        return torch.cat(embs), ctxs

    def __call__(self, posed: Posed, step: int) -> Tensor:
        T = posed.transforms.shape[0]
        n = min(self.config.frames_per_step, T)
        frames = torch.randperm(T, generator=self.generator)[:n].to(self.device)
        return self.per_frame(posed.transforms, frames).mean()

    def measured_frames(self, T: int, count: int | None = None) -> np.ndarray:
        """The frames the distances and metrics are measured on: ``count`` (``metric_frames``) evenly spread."""
        count = count or self.config.metric_frames
        return np.unique(np.linspace(0, T - 1, min(count, T)).round().astype(np.int64))

    def distances(self, posed: Posed, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        frames = self.measured_frames(posed.transforms.shape[0], count)
        values = self.per_frame(posed.transforms, torch.as_tensor(frames, device=self.device))
        return frames, values.cpu().double().numpy()

    def render(self, transforms: Tensor, frames: Tensor) -> Tensor:
        """``(n, C, 3, H, W)`` the character at ``frames`` from each frame's cameras (differentiable)."""
        n, C = len(frames), self.view.shape[1]
        verts = linear_blend_skinning(self.rest, self.weights, transforms[frames])  # (n, V, 3)
        verts = verts[:, None].expand(n, C, -1, -1).reshape(n * C, -1, 3)
        images = soft_rasterize(verts, self.faces, self.colors, self.view[frames].flatten(0, 1),
                                self.proj[frames].flatten(0, 1), self.settings).rgb
        return images.reshape(n, C, *images.shape[1:])

    def embed(self, transforms: Tensor, frames: Tensor) -> tuple[Tensor, Tensor]:
        """``(n, C, D)`` embeddings of the character's renders at ``frames`` (with the source's guiding answers),
        and the ``(n, C, 3, H, W)`` renders."""
        images = self.render(transforms, frames)
        n, C = images.shape[:2]
        context = [c for f in frames.tolist() for c in self.source_ctx[f]]
        return self.encoder.embed_renders(images.flatten(0, 1), context).reshape(n, C, -1), images

    def per_frame(self, transforms: Tensor, frames: Tensor) -> Tensor:
        """``(n,)`` distances of the given frames: renders from every camera, embedded, summed over cameras.
        transforms: ``(T, J, 3, 4)``; frames: ``(n,)`` indices."""
        e, _ = self.embed(transforms, frames)
        return ((e - self.source_emb[frames]) ** 2).mean(-1).sum(-1)

    def compare(self, before: Posed, after: Posed) -> tuple[np.ndarray, np.ndarray, np.ndarray, SemanticMetrics]:
        """Frames measured, per-frame distances before and after, and the paper's semantic metrics."""
        T = before.transforms.shape[0]
        frames = self.measured_frames(T)
        idx = torch.as_tensor(frames, device=self.device)
        source = self.source_emb[idx]  # (n, C, D)
        texts = [c for f in frames.tolist() for c in self.source_ctx[f]]
        out, scl, fid, itm = [], [], [], []
        with torch.no_grad():
            for posed in (before, after):
                e, images = self.embed(posed.transforms, idx)
                d2 = ((e - source) ** 2).mean(-1)  # (n, C)
                out.append(d2.sum(-1).cpu().double().numpy())
                scl.append(float(d2.mean()))
                if len(frames) * source.shape[1] >= 2:
                    fid.append(frechet_distance(source.flatten(0, 1).cpu().numpy(), e.flatten(0, 1).cpu().numpy()))
                else:
                    fid.append(math.nan)
                scores = self.encoder.itm_scores(images.flatten(0, 1), texts)
                itm.append(None if scores is None else float(scores.float().mean()))
        has_itm = None not in itm
        metrics = SemanticMetrics((scl[0], scl[1]), (fid[0], fid[1]), (itm[0], itm[1]) if has_itm else None,
                                  None if has_itm else self.encoder.itm_missing, int(source.shape[0] * source.shape[1]))
        return frames, out[0], out[1], metrics
