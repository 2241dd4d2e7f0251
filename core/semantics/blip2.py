"""BLIP-2 (transformers) as SMT's semantic encoder: the FlanT5 *encoder* output over
[Q-Former query tokens ; guiding question], mean-pooled over the valid positions (paper §3.3, supplement Tab. 4).

Guiding visual question answering, two steps (paper Fig. 6): the model first answers
"Where are the hands of the character?" (generated once per source image, no gradient), then the embedding is
taken over "Question: <answer> What is the character in the image doing? Answer:". Query tokens come from
``get_image_features(...).pooler_output`` (the language-projected Q-Former output) and the question's token
embeddings are concatenated after them directly, so no ``<image>`` placeholder tokens are needed (transformers
5.x silently ignores the image in ``generate`` without them).

Weights: a local folder (``--vlm PATH`` / ``$SMT_VLM_PATH``) saved by ``save_pretrained`` (model, tokenizer,
optionally ``preprocessor_config.json``), or a hub id such as ``Salesforce/blip2-flan-t5-xl`` when the user is
online. fp16 on CUDA, float32 on CPU.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from .base import CLIP_MEAN, CLIP_STD, SemanticEncoder, to_model_pixels

__all__ = ["Blip2Encoder", "QUESTION_WHERE", "QUESTION_WHAT", "DEFAULT_BLIP2", "vqa_prompt", "read_image_norm"]

DEFAULT_BLIP2 = "Salesforce/blip2-flan-t5-xl"  # the practical default (the paper used FlanT5-XXL)
QUESTION_WHERE = "Where are the hands of the character?"
QUESTION_WHAT = "What is the character in the image doing?"


def vqa_prompt(question: str) -> str:
    """BLIP-2's visual question answering template."""
    return f"Question: {question} Answer:"


def read_image_norm(folder: str | Path | None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Image mean and std from a model folder's ``preprocessor_config.json`` (CLIP's values when absent)."""
    if folder is not None:
        path = Path(folder) / "preprocessor_config.json"
        if path.is_file():
            cfg = json.loads(path.read_text())
            return tuple(cfg.get("image_mean", CLIP_MEAN)), tuple(cfg.get("image_std", CLIP_STD))
    return CLIP_MEAN, CLIP_STD


class Blip2Encoder(SemanticEncoder):
    """See the module docstring. Build with :meth:`load` (or directly from a model and tokenizer in tests)."""

    name = "blip2"

    def __init__(self, model, tokenizer, description: str, device: torch.device | str = "cpu",
                 mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD, max_answer_tokens: int = 20,
                 num_beams: int = 5) -> None:
        super().__init__(description, device)
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.dtype = next(model.parameters()).dtype
        self.image_size = int(model.config.vision_config.image_size)
        self.mean, self.std = tuple(mean), tuple(std)
        self.max_answer_tokens = max_answer_tokens
        self.num_beams = num_beams

    @classmethod
    def load(cls, source: str | Path, device: torch.device | str = "cpu", local_only: bool = True) -> "Blip2Encoder":
        """Load from a folder (or a hub id with ``local_only=False``); fp16 on CUDA.

        Raises whatever transformers raises (the caller, :func:`core.semantics.select_supervisor`, turns it
        into a plain message and a fallback).
        """
        from transformers import AutoTokenizer, Blip2ForConditionalGeneration

        device = torch.device(device)
        dtype = torch.float16 if device.type == "cuda" else torch.float32
        model = Blip2ForConditionalGeneration.from_pretrained(str(source), dtype=dtype, local_files_only=local_only)
        tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=local_only)
        folder = Path(source) if Path(source).is_dir() else None
        mean, std = read_image_norm(folder)
        text = model.config.text_config
        n = sum(p.numel() for p in model.parameters())
        size = f"{n / 1e9:.2f}B parameters" if n >= 1e8 else f"{n / 1e6:.2f}M parameters"
        return cls(model.to(device), tokenizer,
                   f"BLIP-2 ({getattr(text, 'model_type', 'language model')}, {size}) from {source}, "
                   f"{'fp16 on ' + str(device) if dtype == torch.float16 else 'float32 on ' + str(device)}",
                   device, mean, std)

    # -- pieces ------------------------------------------------------------------------------------------
    def query_tokens(self, images: Tensor) -> Tensor:
        """``(B, Q, d)`` language-projected Q-Former outputs for images in [0, 1]."""
        pixels = to_model_pixels(images.to(self.device), self.image_size, self.mean, self.std, self.dtype)
        out = self.model.get_image_features(pixel_values=pixels)
        return out.pooler_output if hasattr(out, "pooler_output") else out

    def _inputs(self, query: Tensor, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        tok = self.tokenizer(list(texts), return_tensors="pt", padding=True)
        ids = tok.input_ids.to(self.device)
        text_embeds = self.model.get_input_embeddings()(ids).to(query.dtype)
        mask = torch.cat([torch.ones(query.shape[:2], dtype=torch.long, device=self.device),
                          tok.attention_mask.to(self.device)], dim=1)
        return torch.cat([query, text_embeds], dim=1), mask

    def encode(self, query: Tensor, texts: Sequence[str]) -> Tensor:
        """``(B, d)`` FlanT5 encoder output over [query ; text], mean over the attended positions."""
        embeds, mask = self._inputs(query, texts)
        hidden = self.model.get_encoder()(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        m = mask[..., None].to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1)

    def answer(self, images: Tensor, question: str) -> list[str]:
        """Generated answers to ``question`` about each image (beam search, no gradient)."""
        with torch.no_grad():
            embeds, mask = self._inputs(self.query_tokens(images), [vqa_prompt(question)] * images.shape[0])
            ids = self.model.language_model.generate(inputs_embeds=embeds, attention_mask=mask,
                                                     max_new_tokens=self.max_answer_tokens, num_beams=self.num_beams,
                                                     length_penalty=1.0)
        return [a.strip() for a in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    # -- the interface -----------------------------------------------------------------------------------
    def guiding_context(self, images: Tensor) -> list[str]:
        """Step 1 of the guiding VQA: where the hands are."""
        return self.answer(images, QUESTION_WHERE)

    def embed_renders(self, images: Tensor, context: Sequence[str] | None = None) -> Tensor:
        """Step 2: the pooled encoder output over [query tokens ; "<answer> What is ... doing?"], float32."""
        if context is None:
            context = self.guiding_context(images)
        if len(context) != images.shape[0]:
            raise ValueError(f"{len(context)} guiding answers for {images.shape[0]} images")
        texts = [vqa_prompt(f"{a} {QUESTION_WHAT}".strip()) for a in context]
        return self.encode(self.query_tokens(images), texts).float()
