"""``make demo``: start Dispo on a fresh data directory, run the complete example, stop.

The example (``sales_call_analytics.py``, verbatim from the Post-Call Analytics page) runs on the
official ``smallestai`` client with only the base URL and the API key set: the server's test
provider places the call, the embedded model talks and writes the analytics. Its output is
printed as it comes; the server's log goes to ``<data dir>/server.log`` (shown on failure).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
# With this seed the test provider's callee for the example's number answers, is interested and
# gives their name, as in the page's sample output.
SEED = "4"
RUN_EXAMPLE = (
    "import os, runpy\n"
    "from smallestai.atoms.configuration import Configuration\n"
    "Configuration.set_default(Configuration(host=os.environ['SMALLEST_BASE_URL']))\n"
    f"runpy.run_path({str(HERE / 'sales_call_analytics.py')!r}, run_name='__main__')\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    data = Path(tempfile.mkdtemp(prefix="dispo-demo-"))
    port = free_port()
    env = {
        **os.environ,
        "DISPO_DATA_DIR": str(data),
        "DISPO_DATABASE_URL": "",
        "DISPO_PORT": str(port),
        "DISPO_PHONE_NUMBERS": "+14155550100",
        "DISPO_TEST_PROVIDER_SEED": SEED,
        "DISPO_DIALER_POLL_SECONDS": "0.2",
        "DISPO_LOG_LEVEL": "warning",
    }
    log = (data / "server.log").open("w")
    server = subprocess.Popen([str(BIN / "dispo"), "serve"], env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    ok = False
    try:
        key = None
        assert server.stdout is not None
        for line in server.stdout:
            log.write(line)
            found = re.search(r"API key\s*:\s*(sk_\S+)", line)
            if found:
                key = found.group(1)
                break
        if key is None:
            raise RuntimeError("the server printed no API key")
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        print(f"Dispo is serving {base}/api/v1 from {data}; running examples/sales_call_analytics.py\n", flush=True)
        example_env = {**os.environ, "SMALLEST_BASE_URL": f"{base}/api/v1", "SMALLEST_API_KEY": key}
        ok = subprocess.run([sys.executable, "-c", RUN_EXAMPLE], env=example_env, check=False).returncode == 0
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if not ok:
            sys.stderr.write((data / "server.log").read_text()[-4000:])
        shutil.rmtree(data, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
