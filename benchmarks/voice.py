"""``python -m benchmarks.voice``: the embedded speech backends on this machine.

Prints the TTS's and the STT's real-time factors (processing time / audio time; below 1 is faster
than real time), the STT's word error rate on the project's own synthesised sentences (the
simulated callee's phrasebook, in its voice) with and without hints, and the voice-to-voice time
of test-provider calls (STT + LLM + TTS to first audio, the LLM a scripted 0 ms brain here, so the
speech stages alone) at its p50 and p95, one call at a time and several at once. ``--realtime``
runs the calls at the pace of a phone line (``pace=1``) and doubles the number of calls at once
until voice-to-voice p95 passes 1.5 s. ``--output BENCHMARKS.md`` writes the results as that
file's ``voice`` section (``make bench`` does).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import sections
from dispo.config import Settings
from dispo.runtime.dialogue import AgentProfile, ScriptedBrain, converse
from dispo.telephony import DialRequest
from dispo.telephony.simulated import PHRASES, SimulatedProvider
from dispo.voice.voices import Voices

SENTENCES = (
    *PHRASES,
    "Hello, this is John. Who is calling?",
    "My name is John Smith.",
    "My name is Maria Garcia.",
)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference length), case and punctuation ignored."""
    ref = [w.strip(".,?!").lower() for w in reference.split()]
    hyp = [w.strip(".,?!").lower() for w in hypothesis.split()]
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1], len(ref)


OUT: list[str] = []


def say(line: str) -> None:
    print(line)
    OUT.append(f"- {line}")


def speech(voices: Voices) -> None:
    tts_time = tts_audio = stt_time = 0.0
    errors = {"hints": [0, 0], "general": [0, 0]}
    for sentence in SENTENCES:
        spoken = voices.synthesizer.synthesize(sentence, voices.caller_voice)
        tts_time += spoken.total_ms / 1000
        tts_audio += spoken.audio.duration_s
        for kind, hints in (("hints", SENTENCES), ("general", ())):
            heard = voices.recognizer.transcribe(spoken.audio, hints=hints)
            if kind == "general":
                stt_time += heard.ms / 1000
            wrong, total = word_errors(sentence, heard.text)
            errors[kind][0] += wrong
            errors[kind][1] += total
    say(f"TTS ({type(voices.synthesizer).__name__}): real-time factor {tts_time / tts_audio:.4f}")
    say(
        f"STT ({type(voices.recognizer).__name__}), general model: real-time factor {stt_time / tts_audio:.3f}"
    )
    for kind, (wrong, total) in errors.items():
        say(
            f"STT word error rate, {kind}: {wrong / total:.1%} ({wrong}/{total} words, {len(SENTENCES)} sentences)"
        )


def one_call(voices: Voices, n: int, pace: float = 0.0) -> list[float]:
    provider = SimulatedProvider(seed=n, voices=voices, pace=pace)
    dialed = provider.dial(DialRequest(f"CALL-{n}-bench", "+15005550006", variables={"firstName": "Test"}))
    if dialed.session is None:
        return []
    result = converse(
        dialed.session,
        ScriptedBrain(),
        AgentProfile("a", "A", "", None),
        max_duration_s=600,
        silence_timeout_s=15,
    )
    return [t.v2v_ms for t in result.turns if t.v2v_ms is not None]


def level(voices: Voices, at_once: int, per_level: int, pace: float) -> float:
    """Run ``per_level * at_once`` calls, ``at_once`` at a time; report and return the p95."""
    started = time.perf_counter()
    with ThreadPoolExecutor(at_once) as pool:
        runs = list(pool.map(lambda n: one_call(voices, n, pace), range(per_level * at_once)))
    values = sorted(v for run in runs for v in run)
    p50 = statistics.median(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    kind = "real-time" if pace else "as fast as they go"
    say(
        f"{at_once} call(s) at once ({kind}): voice-to-voice p50 {p50:.0f} ms, p95 {p95:.0f} ms "
        f"({len(values)} turns, {time.perf_counter() - started:.1f} s)"
    )
    return p95


def calls(voices: Voices, concurrency: Sequence[int], per_level: int) -> None:
    one_call(voices, 0)  # warm-up: the hints' first search
    for at_once in concurrency:
        level(voices, at_once, per_level, 0.0)


def realtime(voices: Voices, limit_ms: float = 1500, most: int = 64) -> None:
    """Double the real-time calls at once until voice-to-voice p95 passes ``limit_ms``."""
    at_once, held = 1, 0
    while at_once <= most:
        if level(voices, at_once, 1, 1.0) > limit_ms:
            break
        held, at_once = at_once, at_once * 2
    say(
        f"Real-time voice calls held with voice-to-voice p95 under {limit_ms:.0f} ms: {held} (of {at_once} tried)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", default="1,2,4", help="calls at once, comma-separated")
    parser.add_argument("--calls", type=int, default=3, help="calls per concurrency level and call slot")
    parser.add_argument("--realtime", action="store_true", help="also find the real-time calls held")
    parser.add_argument("--most", type=int, default=64, help="most real-time calls at once to try")
    parser.add_argument("--output", type=Path, help="write the results as this file's voice section")
    args = parser.parse_args()
    voices = Voices.from_settings(Settings())
    speech(voices)
    calls(voices, [int(c) for c in args.concurrency.split(",")], args.calls)
    if args.realtime:
        realtime(voices, most=args.most)
    if args.output is not None:
        body = "## Voice (python -m benchmarks.voice)\n\nEmbedded eSpeak NG and PocketSphinx; scripted agent.\n\n"
        sections.put(args.output, "voice", body + "\n".join(OUT))


if __name__ == "__main__":
    main()
