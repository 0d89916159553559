"""A tiny random BERT and WordPiece tokenizer, built locally in about a second.

Unit tests train and evaluate this instead of MiniLM: same code paths (transformers BERT,
mean pooling, normalize, safetensors), 32-dimensional vectors, no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BASE_WORDS = [
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "on",
    "for",
    "and",
    "or",
    "is",
    "are",
    "can",
    "how",
    "do",
    "i",
    "my",
    "what",
    "why",
    "where",
    "when",
    "who",
    "with",
    "not",
    "no",
    "yes",
    "it",
    "this",
    "that",
    "from",
    "by",
    "be",
    "have",
    "has",
    "was",
    "invoice",
    "receipt",
    "bank",
    "team",
    "card",
    "tax",
    "report",
    "backup",
    "key",
    "app",
    "phone",
    "email",
    "alert",
    "turn",
    "off",
    "on",
    "setup",
    "delete",
    "export",
    "limit",
    "plan",
]


def build_tiny_model(
    folder: Path, corpus: Iterable[str] = (), *, dim: int = 32, seed: int = 0, max_seq_length: int = 64
) -> Path:
    """Write a sentence-transformers folder (BERT + mean pooling + normalize) and return it."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = set(BASE_WORDS)
    for text in corpus:
        words.update(re.findall(r"[a-z0-9]+", text.lower()))
    folder = Path(folder)
    hf_dir = folder / "hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL + sorted(words) + list("abcdefghijklmnopqrstuvwxyz0123456789?.,'!-:;")
    (hf_dir / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    # transformers 5 takes the vocabulary as `vocab` (a path or a dict) and ignores `vocab_file`.
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(dict.fromkeys(vocab))}, do_lower_case=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=dim,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * dim,
        max_position_embeddings=max(128, max_seq_length),
    )
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length)
    model = SentenceTransformer(modules=[transformer, Pooling(dim, pooling_mode="mean"), Normalize()], device="cpu")
    out = folder / "st"
    model.save(str(out))
    return out
