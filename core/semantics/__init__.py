"""Semantic supervisors of SMT's stage II, and choosing one.

* :class:`~core.semantics.blip2.Blip2Encoder`: BLIP-2's FlanT5 encoder over query tokens and a guiding
  question (the paper's);
* :class:`~core.semantics.clip.ClipEncoder`: CLIP's image embedding (the paper's ablation);
* :class:`~core.semantics.skeletal.SkeletalEncoder`: joint distances, hand placement and contacts, used
  automatically when no vision-language weights are present.

:func:`select_supervisor` picks one and says in plain words which and why; it never downloads (a hub id is
looked up in the local Hugging Face cache only), and never raises for missing or broken weights (it falls back to the skeletal supervisor).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NamedTuple

import torch

from .base import SemanticEncoder
from .skeletal import SkeletalEncoder

__all__ = ["Supervisor", "select_supervisor", "VLM_ENV_VAR", "SemanticEncoder", "SkeletalEncoder"]

VLM_ENV_VAR = "SMT_VLM_PATH"
_HOW = (f"pass --vlm PATH (or set {VLM_ENV_VAR}) to a folder with BLIP-2 or CLIP weights saved by "
        "transformers' save_pretrained, e.g. Salesforce/blip2-flan-t5-xl")


class Supervisor(NamedTuple):
    """The semantic encoder to use and a plain-words description of which one it is and why."""

    encoder: SemanticEncoder | SkeletalEncoder
    description: str


def _fallback(why: str) -> Supervisor:
    return Supervisor(SkeletalEncoder(), f"skeletal fallback: {why}")


def _load(kind: str, source: str, device: torch.device, local_only: bool) -> SemanticEncoder:
    if kind == "blip-2":
        from .blip2 import Blip2Encoder

        return Blip2Encoder.load(source, device, local_only)
    from .clip import ClipEncoder

    return ClipEncoder.load(source, device, local_only)


def _from_source(source: str, device: torch.device, local_only: bool) -> Supervisor:
    where = f"{source!r}"
    try:
        if Path(source).is_dir():
            cfg_path = Path(source) / "config.json"
            if not cfg_path.is_file():
                return _fallback(f"{where} has no config.json, so it is not a model folder; {_HOW}")
            kind = json.loads(cfg_path.read_text()).get("model_type", "?")
        else:
            from transformers import AutoConfig

            kind = AutoConfig.from_pretrained(source, local_files_only=local_only).model_type
        if kind not in ("blip-2", "clip"):
            return _fallback(f"{where} holds a {kind!r} model; BLIP-2 or CLIP is needed")
        encoder = _load(kind, source, device, local_only)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return _fallback(f"out of GPU memory loading {where} on {device}; free the GPU or use --device cpu")
    except Exception as e:  # noqa: BLE001 - any loading failure means: use the fallback, say why
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return _fallback(f"could not load {where} (nothing is downloaded: weights must be in a local folder or "
                         f"the local Hugging Face cache): {first[:300]}")
    return Supervisor(encoder, encoder.description)


def select_supervisor(vlm_path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                      use_cache: bool = True) -> Supervisor:
    """The semantic supervisor for stage II.

    Args:
        vlm_path: a folder with BLIP-2 or CLIP weights, or a hub id (``org/name``) already in the local Hugging
            Face cache (nothing is ever downloaded); default ``$SMT_VLM_PATH``. The server owner's choice: the
            web page never passes one.
        device: where the model runs (fp16 on CUDA).
        use_cache: with no path, look for BLIP-2 (``Salesforce/blip2-flan-t5-xl``) in the local Hugging Face
            cache (never downloads).

    Returns:
        The encoder and a description, e.g. "skeletal fallback: no BLIP-2 weights found (...)".
    """
    device = torch.device(device)
    source = os.fspath(vlm_path) if vlm_path else os.environ.get(VLM_ENV_VAR, "").strip()
    if source:
        path = Path(source).expanduser()
        if path.exists():
            return _from_source(str(path), device, local_only=True)
        if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", source):  # org/name: a hub id, from the local cache only
            return _from_source(source, device, local_only=True)
        return _fallback(f"no BLIP-2 weights found: {str(path)!r} does not exist; {_HOW}")
    if use_cache:
        from .blip2 import DEFAULT_BLIP2

        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(DEFAULT_BLIP2, "config.json")
        except Exception:  # noqa: BLE001 - no hub library or a broken cache: nothing cached
            cached = None
        if isinstance(cached, str):
            return _from_source(DEFAULT_BLIP2, device, local_only=True)
    return _fallback(f"no BLIP-2 weights found (no --vlm path, no {VLM_ENV_VAR}, nothing in the Hugging Face "
                     f"cache); {_HOW}")
