"""An encoder whose vectors are one-hot keyword counts: retrieval with it is exact and hand-checkable."""

from __future__ import annotations

import numpy as np


class KeywordEncoder:
    """Each text becomes a vector with a 1 for each keyword it contains (case-insensitive)."""

    similarity_fn_name = "dot"

    def __init__(self, keywords: list[str], *, fail_on: str | None = None) -> None:
        self.keywords = [k.lower() for k in keywords]
        self.fail_on = fail_on  # texts containing this word encode to NaN (a broken model)

    def encode(
        self,
        sentences: list[str],
        *,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
    ) -> np.ndarray:
        out = np.zeros((len(sentences), len(self.keywords)), dtype=np.float32)
        for i, text in enumerate(sentences):
            words = set(text.lower().split())
            out[i] = [1.0 if k in words else 0.0 for k in self.keywords]
            if self.fail_on and self.fail_on in words:
                out[i, 0] = np.nan
        return out
