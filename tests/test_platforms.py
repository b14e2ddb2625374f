"""The code paths that differ by platform, tested here by simulating the other platform: reading the
processor and the memory (Linux's /proc, else the platform's answers), the vector width, and the
signals that stop a run (SIGTERM where the platform has it)."""

import os
import signal

import pytest

from fastnum import _machine, cli


def test_the_processor_is_named_without_proc(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU @ 3 GHz\nflags\t: fpu\n")
    assert _machine.cpu_model(cpuinfo) == "Some CPU @ 3 GHz"
    monkeypatch.setattr(_machine.platform, "processor", lambda: "arm")
    assert _machine.cpu_model(tmp_path / "missing") == "arm"  # macOS on Apple Silicon says "arm"
    monkeypatch.setattr(_machine.platform, "processor", lambda: "")
    assert _machine.cpu_model(tmp_path / "missing") == "unknown"


def test_the_vector_width_comes_from_llvm_on_every_platform(monkeypatch):
    from llvmlite import binding

    assert _machine.vector_width() in ("AVX-512", "AVX2", "AVX", "SSE2", "NEON", "SVE", "unknown")
    monkeypatch.setattr(binding, "get_host_cpu_features", lambda: {"neon": True})
    assert _machine.vector_width() == "NEON"
    monkeypatch.setattr(binding, "get_host_cpu_features", lambda: {"avx2": True, "avx": True})
    assert _machine.vector_width() == "AVX2"


def test_memory_is_read_where_linux_has_it_and_guessed_elsewhere(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   12000000 kB\n")
    assert _machine.available_memory_bytes(meminfo) == 12000000 * 1024
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}[name],
                        raising=False)
    assert _machine.available_memory_bytes(tmp_path / "none") == 4096000  # macOS: no /proc, sysconf
    monkeypatch.delattr(os, "sysconf", raising=False)
    assert _machine.available_memory_bytes(tmp_path / "none") is None  # Windows: nothing to read


def test_where_the_memory_is_unknown_the_run_is_not_refused(monkeypatch):
    monkeypatch.setattr(cli, "available_memory_bytes", lambda: None)
    cli._check_memory({"hidden": [10**8], "batch_size": 100, "network": None, "activation": "sigmoid"})


def test_without_sigterm_only_ctrl_c_stops_a_run(monkeypatch):
    monkeypatch.delattr(signal, "SIGTERM")
    assert cli._stop_signals() == {signal.SIGINT: 130}


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="no SIGTERM here")
def test_with_sigterm_both_stop_a_run():
    assert cli._stop_signals() == {signal.SIGINT: 130, signal.SIGTERM: 143}
