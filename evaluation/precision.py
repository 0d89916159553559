"""Encoding precision: fp32, or bf16 autocast where the hardware runs it natively."""

from __future__ import annotations

import contextlib
import logging
from typing import Literal, cast

log = logging.getLogger(__name__)
Precision = Literal["fp32", "bf16"]
PRECISIONS = ("fp32", "bf16")


def bf16_supported() -> bool:
    """bf16 pays off only with native support: CUDA, or a CPU with AMX or AVX512-BF16."""
    import torch

    if torch.cuda.is_available():
        return cast(bool, torch.cuda.is_bf16_supported())  # torch leaves it unannotated
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def effective_precision(requested: str) -> Precision:
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got '{requested}'")
    if requested == "bf16" and not bf16_supported():
        log.warning("bf16 requested but this machine has no native bf16: encoding in fp32")
        return "fp32"
    return "bf16" if requested == "bf16" else "fp32"


def autocast(precision: Precision) -> contextlib.AbstractContextManager[None]:
    """A context in which model forward passes run at ``precision`` (weights stay fp32)."""
    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.autocast(device_type=device, dtype=torch.bfloat16)
