"""The semantic consistency term of stage II (paper Eq. 10): the supervisor's embedding of the character's pose
kept near its embedding of the source's, for the skeletal supervisor and for image encoders (BLIP-2, CLIP).

A term is called as ``term(posed, step) -> loss`` (a scalar tensor) and reports per frame with
``term.distances(posed) -> (frames (N,), values (N,))``.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ..kinematics import linear_blend_skinning
from ..metrics import SourceClip
from ..semantics.skeletal import FigureProxy, SkeletalEncoder
from .posing import Posed
from .request import Request

__all__ = ["SemanticTerm", "SkeletalTerm", "ImageTerm", "semantic_term"]


class SemanticTerm(Protocol):
    def __call__(self, posed: Posed, step: int) -> Tensor: ...

    def distances(self, posed: Posed) -> tuple[np.ndarray, np.ndarray]: ...


def semantic_term(supervisor, request: Request, source: SourceClip, character_proxy: FigureProxy) -> SemanticTerm:
    """The λ_sem term for the supervisor (a :class:`SkeletalEncoder` or a
    :class:`~core.semantics.base.SemanticEncoder`), ``source`` being ``request.source`` measured.

    Skeletal: squared distance of the per-frame embeddings, averaged over frames. Image encoders: each step
    renders ``frames_per_step`` random frames of the character from the front, left and right (or from
    ``source_camera`` when the source is a video), embeds them with the same guiding answers as the source
    frames and averages the squared distance per embedding dimension (the scale of a VLM's features is its
    own, so λ_sem means the same for any model width).
    """
    if getattr(supervisor, "kind", None) == "skeleton":
        positions = source.positions.to(dtype=torch.float32, device=request.device)
        return SkeletalTerm(supervisor, positions, source.proxy, character_proxy)
    return ImageTerm(supervisor, request)


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
    """Semantic consistency through renders and an image encoder (see :func:`semantic_term`)."""

    def __init__(self, encoder, request: Request) -> None:
        from ..render.soft import SoftRasterSettings, clip_cameras, mannequin, render_views

        source, character, start, device = request.source, request.character, request.start, request.device
        source_frames, source_camera = request.source_frames, request.source_camera
        self.encoder, self.config, self.device = encoder, request.config, device
        self.settings = SoftRasterSettings()
        self.render = render_views
        self.faces = torch.as_tensor(character.faces, device=device)
        colors = character.colors if character.colors is not None else np.full((len(character.rest_vertices), 3), 0.75)
        self.colors = torch.as_tensor(colors, dtype=torch.float32, device=device)
        self.rest = torch.as_tensor(character.rest_vertices, dtype=torch.float32, device=device)
        self.weights = character.dense_weights(torch.float32).to(device)
        self.generator = torch.Generator().manual_seed(0)
        T = start.num_frames
        with torch.no_grad():
            target_points = character.posed_vertices(start.slice(0, None))[:: max(1, T // 30), ::10].numpy()
        if source_frames is not None:  # a video: its frames, the character seen from the video's camera
            self.cameras = [source_camera] if source_camera is not None else clip_cameras(target_points, ("front",))
            emb, ctx = encoder.embed_source_frames(source_frames)
            if len(emb) != T:
                raise ValueError(f"{len(emb)} source frames for a {T}-frame motion")
            self.source_emb, self.source_ctx = emb[:, None].to(device), [[c] for c in ctx]
        else:  # a motion file: a mannequin of the source skeleton from the same three views
            self.cameras = clip_cameras(target_points)
            body = mannequin(source.skeleton)
            with torch.no_grad():
                src_points = body.posed_vertices(source)[:: max(1, T // 30), ::5].numpy()
            src_cams = clip_cameras(src_points)
            faces = torch.as_tensor(body.faces, device=device)
            cols = torch.as_tensor(body.colors, dtype=torch.float32, device=device)
            embs, ctxs = [], []
            for s in range(0, T, 8):
                with torch.no_grad():
                    verts = body.posed_vertices(source.slice(s, s + 8)).float().to(device)
                    images = self.render(verts, faces, cols, src_cams, self.settings).flatten(0, 1)
                e, c = encoder.embed_source_frames(images, key=("mannequin", id(source), s))
                embs.append(e.reshape(verts.shape[0], len(src_cams), -1))
                ctxs += [c[i:i + len(src_cams)] for i in range(0, len(c), len(src_cams))]
            self.source_emb, self.source_ctx = torch.cat(embs).to(device), ctxs

    def __call__(self, posed: Posed, step: int) -> Tensor:
        T = posed.transforms.shape[0]
        n = min(self.config.frames_per_step, T)
        frames = torch.randperm(T, generator=self.generator)[:n].to(self.device)
        return self.per_frame(posed.transforms, frames).mean()

    def distances(self, posed: Posed, count: int = 8) -> tuple[np.ndarray, np.ndarray]:
        T = posed.transforms.shape[0]
        frames = np.unique(np.linspace(0, T - 1, min(count, T)).round().astype(np.int64))
        values = self.per_frame(posed.transforms, torch.as_tensor(frames, device=self.device))
        return frames, values.cpu().double().numpy()

    def per_frame(self, transforms: Tensor, frames: Tensor) -> Tensor:
        """``(n,)`` distances of the given frames: renders from every camera, embedded, summed over cameras.
        transforms: ``(T, J, 3, 4)``; frames: ``(n,)`` indices."""
        n = len(frames)
        verts = linear_blend_skinning(self.rest, self.weights, transforms[frames])  # (n, V, 3)
        images = self.render(verts, self.faces, self.colors, self.cameras, self.settings)  # (n, C, 3, H, W)
        context = [c for f in frames.tolist() for c in self.source_ctx[f]]
        e = self.encoder.embed_renders(images.flatten(0, 1), context).reshape(n, len(self.cameras), -1)
        return ((e - self.source_emb[frames]) ** 2).mean(-1).sum(-1)
