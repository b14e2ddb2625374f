"""What this machine is: processor model, vector width, memory. Linux says most in ``/proc``;
elsewhere (macOS, Windows) the same questions get the answers the platform gives, or "unknown"."""

import os
import platform
from pathlib import Path

CPUINFO = "/proc/cpuinfo"
MEMINFO = "/proc/meminfo"


def cpu_model(cpuinfo=CPUINFO):
    """The processor's model name: Linux's ``/proc/cpuinfo``, else what ``platform`` knows, else "unknown"."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, UnicodeDecodeError):
        pass
    return platform.processor() or "unknown"


def vector_width():
    """"AVX-512", "AVX2", "AVX", "SSE2", "NEON" (Arm) or "unknown": the widest vectors the code that
    numba generates for this host can use (LLVM's own reading of the host, on every platform)."""
    try:
        from llvmlite import binding

        features = binding.get_host_cpu_features()
    except (ImportError, RuntimeError, AttributeError):
        return "unknown"
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("sse2", "SSE2"),
                       ("neon", "NEON"), ("sve", "SVE")):
        if features.get(flag):
            return name
    return "NEON" if platform.machine().lower() in ("arm64", "aarch64") else "unknown"


def available_memory_bytes(meminfo=MEMINFO):
    """What this machine can still give a process: Linux's MemAvailable, else its physical memory
    (``os.sysconf``, macOS too), else None when neither can be read (Windows)."""
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
