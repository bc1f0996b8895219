"""Build, cache and install llama-cpp-python for this CPU, never with llama.cpp's AMX code path.

Why this script exists (docs/install.md says more):

* PyPI ships llama-cpp-python only as a source distribution. Built the default way, llama.cpp is
  compiled with ``-march=native``; on an Intel Xeon with AMX (Sapphire Rapids and later) that turns on
  ggml's AMX weight repacking, which segfaults in ``ggml_backend_amx_mul_mat`` (llama.cpp #20824).
  We build with ``GGML_NATIVE=OFF`` and name every instruction set ourselves; AMX is always off.
* pip's own wheel cache keys a built wheel by the source archive only, not by ``CMAKE_ARGS``: a wheel
  built earlier with other flags (the AMX-native one, say) would be reused silently. So the wheel is
  built with ``--no-cache-dir`` and kept in Dispo's own cache, in a folder named after the version
  and a hash of the exact CMake flags. ``make clean && make run`` reinstalls it in seconds.

Profiles (``DISPO_LLAMA_CPU``, default ``auto``):

* ``avx2``: x86-64-v3 (AVX2, FMA, F16C, BMI2). Every x86-64 server of the last decade.
* ``avx512``: ``avx2`` plus AVX-512 F/BW/VL/DQ, VNNI and BF16 where the CPU has them; no AMX.
* ``portable``: SSE4.2 only, for old or emulated CPUs.
* ``auto``: ``avx2`` where the CPU has it, else ``portable``. AVX-512 is not chosen automatically:
  measured on SmolLM2-135M it was no faster than AVX2 (BENCHMARKS.md, "llama.cpp build").

Usage: ``python scripts/llama_wheel.py install`` (what ``make install`` runs), ``... path`` (print the
cached wheel's path, building it if needed), ``... flags`` (print the profile and CMake flags),
``... clean`` (delete the cached wheels; ``make clean-llama``).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMON = [
    "-DGGML_NATIVE=OFF",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AMX_BF16=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_TOOLS=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_CURL=OFF",
    # The multimodal (mtmd/llava) library: a sixth of the compile time, and Dispo loads no vision model.
    "-DLLAVA_BUILD=OFF",
]
AVX2 = ["-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON"]
NO_AVX512 = [
    "-DGGML_AVX512=OFF",
    "-DGGML_AVX512_VBMI=OFF",
    "-DGGML_AVX512_VNNI=OFF",
    "-DGGML_AVX512_BF16=OFF",
    "-DGGML_AVX_VNNI=OFF",
]
PROFILES: dict[str, list[str]] = {
    "portable": [
        "-DGGML_AVX=OFF",
        "-DGGML_AVX2=OFF",
        "-DGGML_FMA=OFF",
        "-DGGML_F16C=OFF",
        "-DGGML_BMI2=OFF",
        *NO_AVX512,
    ],
    "avx2": [*AVX2, *NO_AVX512],
    "avx512": [
        *AVX2,
        "-DGGML_AVX512=ON",
        "-DGGML_AVX512_VBMI=ON",
        "-DGGML_AVX512_VNNI=ON",
        "-DGGML_AVX512_BF16=ON",
    ],
}


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    match = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    return set(match.group(1).split()) if match else set()


def choose_profile() -> str:
    wanted = os.environ.get("DISPO_LLAMA_CPU", "auto").strip().lower() or "auto"
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "native-arm"
    flags = cpu_flags()
    has_avx2 = {"avx2", "fma", "f16c", "bmi2"} <= flags
    if wanted == "auto":
        return "avx2" if has_avx2 else "portable"
    if wanted not in PROFILES:
        sys.exit(f"DISPO_LLAMA_CPU={wanted!r} is not a profile; use one of auto, {', '.join(PROFILES)}.")
    if wanted == "avx512" and not {"avx512f", "avx512bw", "avx512vl"} <= flags:
        sys.exit("DISPO_LLAMA_CPU=avx512, but this CPU has no AVX-512; use auto or avx2.")
    if wanted == "avx2" and not has_avx2:
        sys.exit("DISPO_LLAMA_CPU=avx2, but this CPU lacks AVX2/FMA/F16C/BMI2; use auto or portable.")
    return wanted


def cmake_args(profile: str) -> list[str]:
    if profile == "native-arm":
        # No AMX off x86; llama.cpp's own ARM feature detection is safe there.
        return [*COMMON]
    return [*COMMON, *PROFILES[profile]]


def pinned_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'"llama-cpp-python==([^"\s;]+)"', text)
    if not match:
        sys.exit(
            "pyproject.toml must pin llama-cpp-python with ==; scripts/llama_wheel.py builds that version."
        )
    return match.group(1)


def cache_root() -> Path:
    configured = os.environ.get("DISPO_WHEEL_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dispo" / "wheels"


def cache_dir(version: str, args: list[str]) -> Path:
    base = cache_root()
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}-{platform.machine()}"
    digest = hashlib.sha256(" ".join(args).encode()).hexdigest()[:12]
    return base / f"llama-cpp-python-{version}-{tag}-{digest}"


def cached_wheel(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    return wheels[0] if wheels else None


def build(version: str, args: list[str], folder: Path) -> Path:
    print(
        f"Building llama-cpp-python {version} from source (a few minutes, once per machine): {' '.join(args)}",
        flush=True,
    )
    env = dict(os.environ)
    env["CMAKE_ARGS"] = " ".join(args)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    env["FORCE_CMAKE"] = "1"
    # DISPO_LLAMA_SOURCE: a source archive or folder on disk, for machines without a package index.
    source = os.environ.get("DISPO_LLAMA_SOURCE") or f"llama-cpp-python=={version}"
    with tempfile.TemporaryDirectory(prefix="dispo-llama-") as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-cache-dir",
                "--no-binary",
                "llama-cpp-python",
                source,
                "-w",
                tmp,
            ],
            check=True,
            env=env,
        )
        built = next(Path(tmp).glob("llama_cpp_python-*.whl"))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "CMAKE_ARGS").write_text(" ".join(args) + "\n")
        target = folder / built.name
        shutil.move(str(built), target)
    return target


def wheel() -> Path:
    version = pinned_version()
    profile = choose_profile()
    args = cmake_args(profile)
    folder = cache_dir(version, args)
    found = cached_wheel(folder)
    if found is not None:
        print(f"llama-cpp-python {version} ({profile}): cached wheel {found}", flush=True)
        return found
    return build(version, args, folder)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "install"
    if command == "flags":
        profile = choose_profile()
        print(profile, " ".join(cmake_args(profile)))
    elif command == "clean":
        for folder in cache_root().glob("llama-cpp-python-*"):
            shutil.rmtree(folder)
            print(f"removed {folder}")
    elif command == "path":
        print(wheel())
    elif command == "install":
        path = wheel()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-cache-dir",
                "--force-reinstall",
                str(path),
            ],
            check=True,
        )
    else:
        sys.exit("usage: python scripts/llama_wheel.py [install|path|flags|clean]")


if __name__ == "__main__":
    main()
