"""What the CPU can do fast: read once per process from /proc/cpuinfo (the CPU does not change mid-run)."""

from __future__ import annotations

import functools
import platform
from pathlib import Path

__all__ = ["cpu_flags", "cpu_has_bf16_instructions", "cpu_has_int8_dot", "cpu_has_native_bf16", "cpu_model"]


@functools.cache
def _cpuinfo_field(name: str) -> str:
    """The first ``name : value`` line of /proc/cpuinfo ('' elsewhere)."""
    if platform.system() != "Linux":
        return ""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return ""
    line = next((ln for ln in text.splitlines() if ln.startswith(name)), "")
    return line.split(":", 1)[-1].strip()


def cpu_flags() -> str:
    """The CPU flags padded with spaces, so ``" avx512_vnni " in cpu_flags()`` matches whole flags only."""
    return " " + _cpuinfo_field("flags") + " "


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """True when the CPU exposes AMX bf16 tiles (the only bf16 path measured faster than fp32)."""
    return " amx_bf16 " in cpu_flags()


def cpu_has_bf16_instructions() -> bool:
    """True when the CPU has any bf16 arithmetic (AVX512-BF16 or AMX): bf16 is then worth measuring."""
    flags = cpu_flags()
    return " avx512_bf16 " in flags or " amx_bf16 " in flags


def cpu_has_int8_dot() -> bool:
    """True when the CPU has VNNI int8 dot products (AVX512-VNNI or AVX-VNNI)."""
    flags = cpu_flags()
    return " avx512_vnni " in flags or " avx_vnni " in flags
