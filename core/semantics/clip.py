"""CLIP's image encoder as the semantic embedding: the paper's ablation SMT_fwi (supplement Tab. 4), which
follows the character's appearance more than its motion. No language side, so no guiding question.

Weights from a local folder saved by ``save_pretrained`` (e.g. ``openai/clip-vit-large-patch14``) or a hub id
when online; fp16 on CUDA.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from .base import SemanticEncoder, to_model_pixels
from .blip2 import read_image_norm

__all__ = ["ClipEncoder"]


class ClipEncoder(SemanticEncoder):
    """``CLIPModel.get_image_features`` (the projected image embedding), differentiable in the images."""

    name = "clip"

    def __init__(self, model, description: str, device: torch.device | str = "cpu",
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> None:
        super().__init__(description, device)
        self.model = model.eval().requires_grad_(False)
        self.dtype = next(model.parameters()).dtype
        self.image_size = int(model.config.vision_config.image_size)
        default_mean, default_std = read_image_norm(None)
        self.mean, self.std = tuple(mean or default_mean), tuple(std or default_std)

    @classmethod
    def load(cls, source: str | Path, device: torch.device | str = "cpu", local_only: bool = True) -> "ClipEncoder":
        """Load from a folder (or a hub id with ``local_only=False``); fp16 on CUDA."""
        from transformers import CLIPModel

        device = torch.device(device)
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        model = CLIPModel.from_pretrained(str(source), dtype=dtype, local_files_only=local_only)
        mean, std = read_image_norm(Path(source) if Path(source).is_dir() else None)
        return cls(model.to(device), f"CLIP image encoder from {source} on {device}", device, mean, std)

    def embed_renders(self, images: Tensor, context: Sequence[str] | None = None) -> Tensor:
        pixels = to_model_pixels(images.to(self.device), self.image_size, self.mean, self.std, self.dtype)
        out = self.model.get_image_features(pixel_values=pixels)
        return (out.pooler_output if hasattr(out, "pooler_output") else out).float()
