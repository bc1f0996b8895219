"""``python -m benchmarks.llama_build``: the llama.cpp build's instruction sets and speed on this CPU.

Which build to install is decided by measurement (docs/install.md): this runs the embedded model
(SmolLM2-135M-Instruct, or ``--model``) on the installed llama-cpp-python, or on other builds named
with ``--site LABEL=PATH`` (a folder a wheel was installed into with ``pip install --target``), and
reports prompt evaluation and generation in tokens/s at 1, 2 and 8 threads, best of three rounds,
every build measured in the same run. Each build runs in a child process of its own, so a build
that crashes (the AMX path does, llama.cpp #20824) is reported with its signal and the run goes on.

Writes the section ``llama-build`` of BENCHMARKS.md (``--no-write`` to only print). The figures of
other machines (the Intel Xeon with AMX) are kept in that section by hand, with the command that
produced them: the section says which.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from benchmarks import sections

ROOT = Path(__file__).resolve().parent.parent
SECTION = "llama-build"
THREADS = (1, 2, 8)
PROMPT = ("The customer called about their order. " * 40).strip()  # 280 tokens for SmolLM2

# Runs in a child: print one JSON line per thread count.
_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import llama_cpp
    from llama_cpp import Llama
    model, prompt, threads = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3].split(",")]
    print(json.dumps({"system_info": llama_cpp.llama_print_system_info().decode()}), flush=True)
    for n in threads:
        llm = Llama(model_path=model, n_ctx=2048, n_threads=n, n_threads_batch=n, verbose=False, seed=0)
        tokens = llm.tokenize(prompt.encode())
        best_pp = best_tg = 0.0
        for _ in range(3):
            llm.reset()
            t0 = time.perf_counter()
            llm.eval(tokens)
            best_pp = max(best_pp, len(tokens) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            made = 0
            for _token in llm.generate(tokens[:8], top_k=1, reset=True):
                made += 1
                if made >= 64:
                    break
            best_tg = max(best_tg, made / (time.perf_counter() - t0))
        print(json.dumps({"threads": n, "prompt_tokens": len(tokens), "pp": best_pp, "tg": best_tg}), flush=True)
        del llm
    """
)


def default_model() -> Path:
    from dispo.llm.local import default_model_path

    return default_model_path()


def cpu_name() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    features = sorted(
        set(flags.group(1).split()) & {"avx2", "avx512f", "avx512_vnni", "amx_tile", "amx_int8"}
        if flags
        else set()
    )
    return f"{match.group(1).strip() if match else platform.machine()} ({', '.join(features) or 'no AVX2'})"


def measure(label: str, site: str | None, model: Path) -> dict[str, object]:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model), PROMPT, ",".join(map(str, THREADS))],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    result: dict[str, object] = {"label": label, "rows": [row for row in lines if "threads" in row]}
    info = next((row["system_info"] for row in lines if "system_info" in row), "")
    result["features"] = " ".join(re.findall(r"(\w+) = 1", info))
    if proc.returncode != 0:
        code = proc.returncode
        result["error"] = (
            f"died of {signal.Signals(-code).name}" if code < 0 else f"exited {code}: {proc.stderr[-300:]}"
        )
    return result


def markdown(results: list[dict[str, object]], model: Path) -> str:
    out = [
        "## llama.cpp build",
        "",
        f"`python -m benchmarks.llama_build` on {cpu_name()}, model `{model.name}`: tokens/s, best of 3",
        "rounds, a 280-token prompt evaluated at once (pp) and 64 tokens generated (tg).",
        "",
        "| build | features | " + " | ".join(f"pp {n}t | tg {n}t" for n in THREADS) + " |",
        "| --- | --- | " + " | ".join("---: | ---:" for _ in THREADS) + " |",
    ]
    for result in results:
        rows = {int(r["threads"]): r for r in result["rows"]}  # type: ignore[attr-defined]
        cells = []
        for n in THREADS:
            row = rows.get(n)
            cells += [f"{row['pp']:.0f}", f"{row['tg']:.0f}"] if row else ["—", "—"]
        label = str(result["label"]) + (f" ({result['error']})" if "error" in result else "")
        out.append(f"| {label} | {result['features']} | " + " | ".join(cells) + " |")
    out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.llama_build", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the embedded SmolLM2)")
    parser.add_argument("--site", action="append", default=[], metavar="LABEL=PATH", help="another build")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    model = args.model or default_model()
    builds: list[tuple[str, str | None]] = [("installed", None)]
    for item in args.site:
        label, _, path = item.partition("=")
        if not path:
            parser.error(f"--site takes LABEL=PATH, got {item!r}")
        builds.append((label, path))
    results = []
    for label, site in builds:
        print(f"measuring {label} …", file=sys.stderr, flush=True)
        results.append(measure(label, site, model))
    text = markdown(results, model)
    print(text)
    if not args.no_write:
        body = text + "\n" + MEASURED_ELSEWHERE
        sections.put(args.output, SECTION, body)
    return 0


# Kept by hand: the same measurement on a machine this one is not. Update it with the command shown.
MEASURED_ELSEWHERE = """\
### On an Intel Xeon with AVX-512 and AMX (measured 2026-11-30)

16 cores (`amx_tile amx_int8 amx_bf16 avx512f avx512bw avx512vl avx512_vnni avx512_bf16`); the
same measurement as `python -m benchmarks.llama_build --site avx512=…` (prompt, rounds, threads), the
full SmolLM2-135M-Instruct Q4_1, wheels built by `scripts/llama_wheel.py` on the Debian machine:

| build | features | pp 1t | tg 1t | pp 2t | tg 2t | pp 8t | tg 8t |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |
| `avx2` (default) | AVX AVX2 F16C FMA BMI2 | 68 | 46 | 163 | 75 | 515 | 161 |
| `avx512` | + AVX512 VBMI VNNI BF16 | 88 | 42 | 176 | 73 | 562 | 192 |
| `-march=native` (pip's default) | + AVX_VNNI, **AMX_INT8** | segfault | | | | | |

The AMX build (what a plain `pip install llama-cpp-python` compiles there) died of SIGSEGV on its
first evaluation; both of Dispo's builds answered, and `make demo` completed with analytics on the
`avx2` one. AVX-512 gave +8 % prompt evaluation and -3 % generation at 2 threads (the size Dispo
runs on), +9 %/+19 % at 8: not a consistent win, so `auto` stays on `avx2` (one wheel for every
x86-64-v3 CPU) and `DISPO_LLAMA_CPU=avx512` is there for those who measure a gain on theirs.
"""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
