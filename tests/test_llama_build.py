"""The llama.cpp build: profiles never enable AMX, the wheel cache is keyed by the flags, and the
installed build is one that ``scripts/llama_wheel.py`` would make (no AMX compiled in)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "llama_wheel.py"


@pytest.fixture(scope="module")
def llama_wheel() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llama_wheel", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["llama_wheel"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("profile", ["portable", "avx2", "avx512"])
def test_every_profile_turns_native_and_amx_off(llama_wheel: ModuleType, profile: str) -> None:
    args = llama_wheel.cmake_args(profile)
    assert "-DGGML_NATIVE=OFF" in args
    for flag in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert f"-D{flag}=OFF" in args
        assert f"-D{flag}=ON" not in args


def test_auto_picks_avx2_where_the_cpu_has_it(
    llama_wheel: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llama_wheel.platform, "machine", lambda: "x86_64")
    monkeypatch.delenv("DISPO_LLAMA_CPU", raising=False)
    amx_xeon = {"avx2", "fma", "f16c", "bmi2", "avx512f", "avx512bw", "avx512vl", "amx_tile", "amx_int8"}
    monkeypatch.setattr(llama_wheel, "cpu_flags", lambda: amx_xeon)
    assert llama_wheel.choose_profile() == "avx2"
    monkeypatch.setattr(llama_wheel, "cpu_flags", lambda: {"sse4_2", "avx"})
    assert llama_wheel.choose_profile() == "portable"


def test_avx512_is_refused_without_avx512(llama_wheel: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llama_wheel.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(llama_wheel, "cpu_flags", lambda: {"avx2", "fma", "f16c", "bmi2"})
    monkeypatch.setenv("DISPO_LLAMA_CPU", "avx512")
    with pytest.raises(SystemExit, match="no AVX-512"):
        llama_wheel.choose_profile()
    monkeypatch.setenv("DISPO_LLAMA_CPU", "fastest")
    with pytest.raises(SystemExit, match="not a profile"):
        llama_wheel.choose_profile()


def test_cache_folder_changes_with_flags_and_version(
    llama_wheel: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DISPO_WHEEL_CACHE", str(tmp_path))
    avx2 = llama_wheel.cache_dir("0.3.36", llama_wheel.cmake_args("avx2"))
    avx512 = llama_wheel.cache_dir("0.3.36", llama_wheel.cmake_args("avx512"))
    native = llama_wheel.cache_dir("0.3.36", ["-DGGML_NATIVE=ON"])
    older = llama_wheel.cache_dir("0.3.35", llama_wheel.cmake_args("avx2"))
    assert len({avx2, avx512, native, older}) == 4
    assert avx2.parent == tmp_path
    assert avx2 == llama_wheel.cache_dir("0.3.36", llama_wheel.cmake_args("avx2"))


def test_the_pinned_version_is_the_installed_one(llama_wheel: ModuleType) -> None:
    from importlib.metadata import version

    assert version("llama-cpp-python") == llama_wheel.pinned_version()


def test_installed_llama_cpp_has_no_amx_compiled_in() -> None:
    """What the AMX segfault needs is AMX code in the build; the installed one must not have it."""
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is part of `make install`")
    info = llama_cpp.llama_print_system_info().decode()
    assert "CPU" in info, info
    assert "AMX" not in info, f"llama.cpp was built with AMX: {info}"
