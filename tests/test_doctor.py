"""`dispo doctor` and the checks `dispo serve` runs on start-up: each problem found with its fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dispo import doctor
from dispo.cli import app
from dispo.config import Settings, get_settings
from dispo.llm import close_backends
from tests.conftest import _free_port

runner = CliRunner()
DISPO = str(Path(sys.executable).with_name("dispo"))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data directory, a migrated database, and the scripted model (fast, no llama.cpp)."""
    monkeypatch.setenv("DISPO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DISPO_LLM_BACKEND", "scripted")
    for name in ("DISPO_DATABASE_URL", "DISPO_QUEUE_URL", "DISPO_LLM_SCRIPT", "DISPO_LLM_MODEL_PATH"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    yield tmp_path
    get_settings.cache_clear()
    close_backends()


def run_doctor(*args: str) -> tuple[int, dict[str, Any]]:
    get_settings.cache_clear()
    result = runner.invoke(app, ["doctor", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def test_a_working_installation_passes(env: Path) -> None:
    code, report = run_doctor()
    assert code == 0, report
    checks = by_name(report)
    assert list(checks) == ["model", "database", "queue", "disk"]
    assert report["ok"] is True
    assert all(c["status"] == "ok" for c in checks.values()), checks
    assert "scripted model scripted loaded in" in checks["model"]["detail"]
    assert "migrations at head" in checks["database"]["detail"]
    assert "writable" in checks["queue"]["detail"]


def test_the_human_output_marks_each_check_and_gives_the_fix(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPO_QUEUE_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "✓ model" in result.output
    assert "✗ queue" in result.output
    assert "fix: Start Redis (or fix DISPO_QUEUE_URL)" in result.output


def test_a_missing_model_file_fails_with_the_setting_to_fix(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPO_LLM_BACKEND", "local")
    monkeypatch.setenv("DISPO_LLM_MODEL_PATH", str(env / "missing.gguf"))
    code, report = run_doctor()
    assert code == 1
    model = by_name(report)["model"]
    assert model["status"] == "fail"
    assert "No GGUF model at" in model["detail"]
    assert "DISPO_LLM_MODEL_PATH" in model["detail"]
    assert "llama.cpp build" in by_name(report)  # checked for the local backend


def test_a_model_that_segfaults_while_loading_fails_the_check_not_the_doctor(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISPO_LLM_SCRIPT", json.dumps({"faults": [{"op": "load", "action": "segfault"}]}))
    code, report = run_doctor()
    assert code == 1
    model = by_name(report)["model"]
    assert model["status"] == "fail"
    assert "SIGSEGV" in model["detail"]
    assert "llama.cpp build" in model["fix"]


def test_an_unmigrated_database_and_an_unreachable_queue(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "new", queue_url="redis://127.0.0.1:1/0")
    assert doctor.check_database(settings).status == "warn"  # `dispo serve` creates it
    queue = doctor.check_queue(settings)
    assert queue.status == "fail"
    assert "does not answer" in queue.detail
    assert not (tmp_path / "new").exists()  # the checks create nothing


def test_little_free_disk_is_a_warning(tmp_path: Path) -> None:
    check = doctor.check_disk(Settings(data_dir=tmp_path), minimum=1 << 60)
    assert check.status == "warn"
    assert "DISPO_DATA_DIR" in check.fix


INFO_AMX = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 |"
INFO_NO_AMX = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | FMA = 1 | AVX512 = 0 | LLAMAFILE = 1 |"


def test_an_amx_build_on_an_amx_cpu_fails_with_the_rebuild_command() -> None:
    check = doctor.judge_build(INFO_AMX, {"avx2", "amx_tile", "amx_int8"})
    assert check.status == "fail"
    assert "llama.cpp #20824" in check.fix
    assert "make clean-llama install" in check.fix
    assert "SSE3 SSSE3 AVX AVX2 F16C FMA AVX512 AMX_INT8" in check.detail


def test_a_build_without_amx_passes_and_lists_its_simd() -> None:
    check = doctor.judge_build(INFO_NO_AMX, {"avx2", "amx_tile"})
    assert check.status == "ok"
    assert check.detail == "SIMD: SSE3 AVX AVX2 FMA; no AMX"
    assert doctor.judge_build(INFO_AMX, {"avx2"}).status == "ok"  # AMX code a CPU without AMX never runs
    assert doctor.judge_build(None, set()).status == "fail"


def test_this_machines_llama_cpp_build() -> None:
    pytest.importorskip("llama_cpp")
    check = doctor.check_build(doctor._system_info_in_child())
    assert check.status == "ok", check
    assert "SIMD:" in check.detail


# ---------------------------------------------------------------------------------------------
# `dispo serve` runs the checks


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    full = {**os.environ, "DISPO_DATA_DIR": str(tmp_path), "DISPO_PORT": str(env.pop("port", "")), **env}
    full.pop("DISPO_DATABASE_URL", None)
    return subprocess.Popen(
        [DISPO, "serve", *args], env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_serve_refuses_to_start_when_the_model_cannot_load(tmp_path: Path) -> None:
    proc = _serve(tmp_path, port=str(_free_port()), DISPO_LLM_MODEL_PATH=str(tmp_path / "missing.gguf"))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert "No GGUF model at" in out
    assert "Not starting" in out
    assert "--skip-doctor" in out


def test_serve_skip_doctor_starts_anyway(tmp_path: Path) -> None:
    port = _free_port()
    proc = _serve(
        tmp_path, "--skip-doctor", port=str(port), DISPO_LLM_MODEL_PATH=str(tmp_path / "missing.gguf")
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "dispo serve --skip-doctor did not answer within 60 s"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
