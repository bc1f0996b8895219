"""`dispo serve` as a new user runs it: first start prints a key, and the official SDK works with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port

# smallestai 4.3.1 imports pydub, which warns about a missing ffmpeg and invalid escapes on import.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::SyntaxWarning")

DISPO = str(Path(sys.executable).with_name("dispo"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    port = _free_port()
    env = {**os.environ, "DISPO_DATA_DIR": str(tmp_path), "DISPO_PORT": str(port), "COLUMNS": "200"}
    env.pop("DISPO_DATABASE_URL", None)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([DISPO, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dispo serve did not come up:\n{log.read_text()}")
            time.sleep(0.1)
        text = log.read_text()
        match = re.search(r"API key\s*:\s*(sk_[A-Za-z0-9_-]+)", text)
        assert match, text
        assert f"{base}/api/v1" in text
        assert f"{base}/docs" in text
        subprocess.run(
            [DISPO, "demo-data", "--calls", "40", "--days", "3"], env=env, check=True, capture_output=True
        )
        yield f"{base}/api/v1", match.group(1), log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_first_start_prints_a_working_key_for_the_official_sdk(
    served: tuple[str, str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, key, _ = served
    monkeypatch.setenv("SMALLEST_BASE_URL", base_url)
    monkeypatch.setenv("SMALLEST_API_KEY", key)
    from smallestai.atoms.call import Call

    call = Call()
    listed = call.get_calls(limit=5)
    assert listed["data"]["pagination"]["total"] == 40
    ids = [log["callId"] for log in listed["data"]["logs"]]
    assert len(ids) == 5
    assert call.get_call(ids[0])["data"]["callId"] == ids[0]
    assert call.search_calls(ids[:3])["data"]["total"] == 3
    assert httpx.get(f"{base_url}/conversation").status_code == 401


def test_second_start_keeps_the_data_and_prints_no_new_key(served: tuple[str, str, Path]) -> None:
    _, key, log = served
    tmp = log.parent
    port = _free_port()
    env = {**os.environ, "DISPO_DATA_DIR": str(tmp), "DISPO_PORT": str(port)}
    env.pop("DISPO_DATABASE_URL", None)
    proc = subprocess.Popen(
        [DISPO, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/conversation", headers={"Authorization": f"Bearer {key}"}
                )
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert r.json()["data"]["pagination"]["total"] == 40
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "API key      : sk_" not in out
    assert "existing keys are kept hashed" in out
