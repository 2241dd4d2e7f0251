"""The interface of image-based semantic encoders (BLIP-2, CLIP), their shared preprocessing, and the cache of
source embeddings.

An encoder maps images ``(B, 3, 224, 224)`` in [0, 1] (renders of the character, or frames of the source
video) to one vector per image ``(B, D)``, differentiably, so that a loss on the vectors reaches the render
and, through the soft rasteriser, the joint angles. Resizing and normalisation happen in torch: the
transformers image processors convert to numpy/PIL (cutting autograd) and want torchvision, absent here.

Guiding context: BLIP-2 first asks "Where are the hands of the character?" and puts the answer into its
second question; :meth:`SemanticEncoder.guiding_context` returns such per-image text (empty for CLIP), and
:meth:`SemanticEncoder.embed_renders` takes it, so a source frame and the target's render of the same frame
can be embedded with the *same* question: their difference then comes from the images alone.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Callable, Hashable, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["SemanticEncoder", "to_model_pixels", "frames_to_tensor", "CLIP_MEAN", "CLIP_STD", "SUPPORTED_MODELS"]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's (also BLIP-2's) normalisation
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SUPPORTED_MODELS = ("blip-2", "clip")


def to_model_pixels(images: Tensor, size: int, mean: Sequence[float], std: Sequence[float],
                    dtype: torch.dtype | None = None) -> Tensor:
    """``(B, 3, size, size)`` model input from ``(B, 3, H, W)`` images in [0, 1] (bilinear resize, normalise;
    differentiable)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
    x = images
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                            antialias=x.shape[-1] > size)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
    s = torch.tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
    x = (x - m) / s
    return x.to(dtype) if dtype is not None else x


def frames_to_tensor(frames, size: int = 224) -> Tensor:
    """Video frames as ``(N, 3, size, size)`` floats in [0, 1]: ``(N, H, W, 3)`` uint8 arrays or ``(N, 3, H, W)``
    float tensors; non-square frames are padded (white) to a square around their centre first."""
    x = torch.as_tensor(np.asarray(frames)) if not isinstance(frames, Tensor) else frames
    if x.ndim != 4:
        raise ValueError(f"frames must be (N, H, W, 3) or (N, 3, H, W), got {tuple(x.shape)}")
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    x = x.float() / 255.0 if not x.is_floating_point() else x.float()
    h, w = x.shape[-2:]
    if h != w:
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        x = torch.nn.functional.pad(x, (left, side - w - left, top, side - h - top), value=1.0)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                           antialias=x.shape[-1] > size)


class SemanticEncoder(ABC):
    """An image semantic encoder: see the module docstring.

    Attributes: kind ("image"), name (short), description (plain words: which model, from where), device.
    """

    kind = "image"
    name = "image"

    def __init__(self, description: str, device: torch.device | str = "cpu") -> None:
        self.description = description
        self.device = torch.device(device)
        self._cache: dict[Hashable, tuple[Tensor, list[str]]] = {}

    @abstractmethod
    def embed_renders(self, images: Tensor, context: Sequence[str] | None = None) -> Tensor:
        """``(B, D)`` float32 embeddings of ``(B, 3, H, W)`` images in [0, 1], differentiable in the images.

        context: per-image guiding text (see :meth:`guiding_context`); computed from the images when None.
        """

    def guiding_context(self, images: Tensor) -> list[str]:
        """Per-image text the embedding is conditioned on (none for encoders without a language side)."""
        return [""] * images.shape[0]

    def embed_source_frames(self, frames, key: Hashable | None = None, batch: int = 16,
                            progress: Callable[[float, str], None] | None = None) -> tuple[Tensor, list[str]]:
        """Embeddings ``(N, D)`` and guiding contexts of source frames, computed once per ``key`` and cached.

        frames: ``(N, H, W, 3)`` uint8 (a video's frames), ``(N, 3, H, W)`` floats in [0, 1] (renders), or a lazy
            source of square crops (anything with ``len``, ``key`` and ``batches(size, batch)`` yielding
            ``(n, size, size, 3)`` uint8, e.g. :class:`pose.crops.VideoCrops`), read batch by batch at the model's
            resolution so that a long clip's frames never sit in memory together.
        key: what identifies these frames (e.g. the video path and frame range); a lazy source's own ``key``, or
            the frames' bytes' hash, when None.
        progress: called with (share of the frames embedded, what) after each batch (a long clip takes minutes
            with BLIP-2's guiding answers; a cancelled job's callback raises there).
        """
        lazy = hasattr(frames, "batches")
        if key is None:
            if lazy:
                key = frames.key
            else:
                data = frames.detach().cpu().numpy() if isinstance(frames, Tensor) else np.asarray(frames)
                key = ("frames", hashlib.sha1(np.ascontiguousarray(data).tobytes()).hexdigest())
        if key not in self._cache:
            size = getattr(self, "image_size", 224)
            chunks = (frames_to_tensor(b, size) for b in frames.batches(size, batch)) if lazy else (
                x[s:s + batch] for x in [frames_to_tensor(frames, size)] for s in range(0, len(x), batch))
            embeddings, contexts = [], []
            with torch.no_grad():
                for chunk in chunks:
                    images = chunk.to(self.device)
                    context = self.guiding_context(images)
                    embeddings.append(self.embed_renders(images, context).float().cpu())
                    contexts += context
                    if progress is not None:
                        progress(len(contexts) / max(len(frames), 1), "embedding the source frames")
            self._cache[key] = (torch.cat(embeddings), contexts)
        return self._cache[key]

    def itm_scores(self, images: Tensor, texts: Sequence[str]) -> Tensor | None:
        """``(B,)`` image-text matching probabilities (paper Eq. 14) where the model has an ITM head, else None
        (:attr:`itm_missing` says why)."""
        return None

    @property
    def itm_missing(self) -> str:
        """Why :meth:`itm_scores` gives nothing for this model."""
        return ("the model has no image-text matching head (the paper's ITM is BLIP-2's two-class classifier, "
                "which comes with Blip2ForImageTextRetrieval checkpoints, not with the FlanT5 ones or CLIP)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r})"
