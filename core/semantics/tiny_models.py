"""Tiny random BLIP-2 and CLIP models and an in-memory tokenizer, built from configs (nothing downloaded).

For tests and benchmarks: they exercise the real encoder code paths (and give a full-size random model a
tokenizer) on machines without downloaded weights. Their embeddings mean nothing.
"""
from __future__ import annotations

import torch

WORDS = ("<pad> </s> <unk> question answer where are the hands of character what is in image doing ? : . "
         "front left right head chest belly together up down").split()


def tiny_tokenizer():
    """A word-level fast tokenizer over :data:`WORDS` (lower-cased, punctuation split)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def tiny_blip2(seed: int = 0, image_size: int = 32):
    """A Blip2ForConditionalGeneration with a 1-layer ViT, Q-Former and T5 (hidden size 32, 4 query tokens)."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, T5Config

    text = T5Config(d_model=32, d_ff=48, num_layers=1, num_decoder_layers=1, num_heads=4, d_kv=8,
                    vocab_size=len(WORDS), decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    cfg = Blip2Config(
        vision_config=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=1, num_attention_heads=4,
                           image_size=image_size, patch_size=8),
        qformer_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=48,
                            encoder_hidden_size=32, vocab_size=64),
        text_config=text.to_dict(), num_query_tokens=4)
    torch.manual_seed(seed)
    return Blip2ForConditionalGeneration(cfg).eval()


def tiny_clip(seed: int = 0, image_size: int = 32):
    """A CLIPModel with 1-layer encoders (hidden size 16, projection 8)."""
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(text_config=dict(hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2,
                                      vocab_size=len(WORDS), bos_token_id=0, eos_token_id=1, pad_token_id=0),
                     vision_config=dict(hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                        num_attention_heads=2, image_size=image_size, patch_size=8),
                     projection_dim=8)
    torch.manual_seed(seed)
    return CLIPModel(cfg).eval()
