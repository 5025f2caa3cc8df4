"""The Raspberry Pi budget: instructions per second of audio, per stage, and resident memory.

Instruction counts are repeatable on a noisy shared machine where seconds are not, so the
daemon's steady state is measured with valgrind's callgrind: the live `Pipeline`
(daemon/earshot/pipeline.py, exactly as `earshot run` drives it) is fed a fixed input,
a 48 kHz stereo excerpt of a catalogued song with noise added, in 0.25 s hops (capture
excluded). Each stage of the hop is called through its own small C trampoline function
(compiled here with cffi), so callgrind's inclusive count of that function is the stage's
whole cost, interpreter included:

  resample     mono mix + 48 kHz -> 8 kHz conversion (mix_mono, Resampler.process)
  fingerprint  spectral peaks (PeakStream.process) + pair hashes (es_fp_hash, moved here
               from inside the matcher)
  match        MatchSession.add_peaks (hashing under the speed hypotheses, LMDB lookups,
               numpy bookkeeping) and the twice-a-second evaluation (NowPlaying, scoring,
               eviction), less the hashes' C cost above
  loudness     LoudnessMeter.process (es_loud_process) and the periodic loudness readings
  glue         the rest of Pipeline.process (block handling, clocks, events)

Collection is switched on only inside the steady-state loop (--toggle-collect), after a
warm-up, so imports, catalog opening and start-up transients are not counted (and, with
valgrind's headers present, not even instrumented: that part runs at near native speed).

Memory: the same pipeline without valgrind over `--rss-minutes` of the input (looped),
reporting the peak and final resident set size split into anonymous memory and file
pages (LMDB maps the catalog; the pages it touches count as resident but are page cache).

The catalog: `earshot ingest` of Debian's game soundtracks (scripts/bench_corpus.py, about
7.6 hours); when that is less than `--hours`, slowed-down copies (speed x0.8: pitch and
tempo, so their hashes are those of new music, not duplicates) of the first tracks are
added until the total reaches it. Built once under bench-out/, reused after.

Usage: python scripts/bench_instructions.py [--seconds 60] [--hours 10] [--rss-minutes 10]
Writes bench-out/pi-budget.json and bench-out/pi-budget.md. Target: <= 30 M instructions per
second of audio, <= 80 MB resident. Asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out"
sys.path.insert(0, str(ROOT / "scripts"))

RATE = 48000
CHANNELS = 2
HOP_S = 0.25
VARIANT_SPEED = 0.8
TARGET_INSTR_PER_S = 30e6
TARGET_RSS_MB = 80.0
STAGES = ("resample", "fingerprint", "match", "loudness")
TRAMPOLINE = "earshot_bench_"

# C kernels and libraries reported inside the stages (inclusive counts of these functions)
KERNEL_FUNCTIONS = ("es_mix_mono", "es_rs_process", "es_fp_process", "es_fp_hash",
                    "es_loud_process", "es_loud_get_integrated", "es_loud_get_range",
                    "es_pl_lookup",       # the catalog's postings read in C (liblmdb included)
                    "cursor_get_multi")  # py-lmdb's getmulti: lookups in a snapshot C declined


# ---- the catalog ---------------------------------------------------------------------------

def _variant(src: Path, dest: Path, rate: int) -> None:
    """A slowed-down copy (pitch and tempo x0.8), mono 22.05 kHz Ogg Vorbis."""
    if dest.exists() and dest.stat().st_size > 0:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part.ogg")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-af",
         f"asetrate={rate * VARIANT_SPEED:g},aresample=22050", "-ac", "1", "-c:a", "libvorbis",
         "-q:a", "3", str(tmp)], check=True)
    tmp.rename(dest)


def ensure_catalog(catalog: Path, hours: float) -> dict[str, float]:
    """Build (once) a catalog of at least `hours` of music; returns its description."""
    marker = catalog.parent / (catalog.name + ".json")
    if marker.exists() and (catalog / "data.mdb").exists():
        info = json.loads(marker.read_text())
        if info.get("hours", 0) >= hours:
            return info
    from bench_corpus import build_corpus, ensure_packages

    tracks = build_corpus(ensure_packages(), OUT / "corpus")
    if not tracks:
        raise SystemExit("no soundtrack packages installed (run as root to install them)")
    files = [t.path for t in tracks]
    total_s = sum(t.duration_s for t in tracks)
    variants_s = 0.0
    for t in tracks:
        if total_s + variants_s >= hours * 3600:
            break
        dest = OUT / "pi-variants" / f"{t.package}-{t.path.stem}-x{VARIANT_SPEED:g}.ogg"
        _variant(t.path, dest, t.sample_rate)
        files.append(dest)
        variants_s += t.duration_s / VARIANT_SPEED
    print(f"ingesting {len(files)} files ({(total_s + variants_s) / 3600:.2f} h) into {catalog} ...",
          file=sys.stderr)
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "earshot", "ingest", "--rebuild", "-q",
                    "--catalog", str(catalog), *map(str, files)], check=True)
    info = {"hours": (total_s + variants_s) / 3600, "original_hours": total_s / 3600,
            "variant_hours": variants_s / 3600, "files": len(files),
            "ingest_s": time.monotonic() - t0,
            "catalog_mb": sum(f.stat().st_size for f in catalog.iterdir()) / 1e6}
    marker.write_text(json.dumps(info, indent=1))
    return info


# ---- the fixed input -----------------------------------------------------------------------

def make_input(path: Path, seconds: float) -> dict[str, object]:
    """A catalogued song from 30 s in, decoded to 48 kHz stereo, with white noise 20 dB below
    its level (seeded): the same samples on every run."""
    from bench_corpus import build_corpus, ensure_packages

    tracks = [t for t in build_corpus(ensure_packages(), OUT / "corpus") if t.duration_s >= 30 + seconds]
    song = tracks[0]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-ss", "30", "-t", f"{seconds:g}", "-i", str(song.path),
         "-ac", str(CHANNELS), "-ar", str(RATE), "-f", "f32le", "-"],
        check=True, capture_output=True).stdout
    x = np.frombuffer(raw, dtype="<f4").reshape(-1, CHANNELS).astype(np.float32)
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    noise = np.random.default_rng(8).standard_normal(x.shape) * rms * 10 ** (-20 / 20)
    x = (x + noise).astype(np.float32)
    np.save(path, x)
    return {"song": str(song.path), "title": song.title, "seconds": x.shape[0] / RATE, "snr_db": 20}


# ---- the measured process (run under valgrind, or plainly for memory) ----------------------

def _stage_library(tmp: Path):
    """A tiny cffi module: one trampoline per stage that calls back into Python, so that
    callgrind attributes everything a stage does to that function."""
    from cffi import FFI

    names = ["steady_state", *STAGES]
    ffi = FFI()
    ffi.cdef('extern "Python" int earshot_bench_call(void *);\n'
             "void earshot_bench_instrument(void);\n"
             + "".join(f"int {TRAMPOLINE}{n}(void *);\n" for n in names))
    ffi.set_source(
        "_earshot_bench_stages",
        # start callgrind's instrumentation from here (run with --instr-atstart=no), so the
        # imports and the warm-up run at near native speed; a no-op outside valgrind
        "#if defined(__has_include)\n#if __has_include(<valgrind/callgrind.h>)\n"
        "#include <valgrind/callgrind.h>\n#define HAVE_CALLGRIND_H 1\n#endif\n#endif\n"
        "void earshot_bench_instrument(void) {\n#ifdef HAVE_CALLGRIND_H\n"
        "CALLGRIND_START_INSTRUMENTATION;\n#endif\n}\n"
        "static int earshot_bench_call(void *);\n"
        + "".join(f"__attribute__((noinline)) int {TRAMPOLINE}{n}(void *h) "
                  "{ return earshot_bench_call(h); }\n" for n in names))
    ffi.compile(tmpdir=str(tmp), verbose=False)
    sys.path.insert(0, str(tmp))
    import _earshot_bench_stages  # type: ignore[import-not-found]

    return _earshot_bench_stages


class Stages:
    """Runs callables through the stage trampolines."""

    def __init__(self, module):
        self.ffi, self.lib = module.ffi, module.lib
        self._error: BaseException | None = None

        @self.ffi.def_extern(error=-1)
        def earshot_bench_call(handle):
            try:
                self.ffi.from_handle(handle)()
            except BaseException as exc:  # noqa: BLE001 - re-raised after the trampoline returns
                self._error = exc
                return -1
            return 0

    def run(self, stage: str, fn):
        box: dict[str, object] = {}

        def call() -> None:
            box["result"] = fn()

        getattr(self.lib, TRAMPOLINE + stage)(self.ffi.new_handle(call))
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        return box.get("result")

    def wrap(self, stage: str, fn):
        return lambda *a, **k: self.run(stage, lambda: fn(*a, **k))


def _pipeline(catalog_path: Path):
    from datetime import datetime

    from earshot.catalog import Catalog
    from earshot.pipeline import Pipeline, audio_clock_stamp

    catalog = Catalog.open(catalog_path, readonly=True)  # as the service opens it
    return Pipeline(catalog, RATE, CHANNELS, stamp=audio_clock_stamp(datetime(2026, 1, 1, tzinfo=UTC)))


def _instrument(pipe, stages: Stages) -> None:
    import earshot.pipeline as pipeline_module

    pipe.meter.process = stages.wrap("loudness", pipe.meter.process)
    pipe.loudness_event = stages.wrap("loudness", pipe.loudness_event)
    pipeline_module.mix_mono = stages.wrap("resample", pipeline_module.mix_mono)
    pipe.resampler.process = stages.wrap("resample", pipe.resampler.process)
    pipe.peaks.process = stages.wrap("fingerprint", pipe.peaks.process)
    pipe.session.add_peaks = stages.wrap("match", pipe.session.add_peaks)
    pipe._evaluate = stages.wrap("match", pipe._evaluate)


def child_callgrind(args: argparse.Namespace) -> None:
    x = np.load(args.input)
    hop = int(HOP_S * RATE)
    warm = int(args.warmup * RATE) // hop * hop
    with tempfile.TemporaryDirectory() as tmp:
        stages = Stages(_stage_library(Path(tmp)))
        pipe = _pipeline(args.catalog)
        _instrument(pipe, stages)
        events: list[object] = []
        for i in range(0, warm, hop):
            events += pipe.process(x[i:i + hop])

        def steady() -> None:
            for i in range(warm, x.shape[0] - hop + 1, hop):
                events.extend(pipe.process(x[i:i + hop]))

        stages.lib.earshot_bench_instrument()
        stages.run("steady_state", steady)
        kinds = sorted({type(e).__name__ for e in events})
        state = pipe.nowplaying.state
        song = pipe.nowplaying.song.match.track.title if pipe.nowplaying.song else None
        Path(args.report).write_text(json.dumps({
            "measured_s": (x.shape[0] - warm) // hop * hop / RATE, "warmup_s": warm / RATE,
            "events": kinds, "state": state, "song": song}))


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def child_memory(args: argparse.Namespace) -> None:
    x = np.load(args.input)
    hop = int(HOP_S * RATE)
    pipe = _pipeline(args.catalog)
    total = int(args.rss_minutes * 60 * RATE)
    samples = []
    done = 0
    while done < total:
        for i in range(0, x.shape[0] - hop + 1, hop):
            pipe.process(x[i:i + hop])
            done += hop
            if done % (60 * RATE) < hop:
                samples.append({"minute": round(done / RATE / 60, 2),
                                "rss_mb": _status_kb("VmRSS") / 1024,
                                "anon_mb": _status_kb("RssAnon") / 1024,
                                "file_mb": _status_kb("RssFile") / 1024})
            if done >= total:
                break
    Path(args.report).write_text(json.dumps({
        "minutes": done / RATE / 60, "hwm_mb": _status_kb("VmHWM") / 1024,
        "rss_mb": _status_kb("VmRSS") / 1024, "anon_mb": _status_kb("RssAnon") / 1024,
        "file_mb": _status_kb("RssFile") / 1024, "series": samples,
        "input_array_mb": x.nbytes / 1e6}))


# ---- reading callgrind's output ------------------------------------------------------------

# "  1,234 (5.6%)  file:function [object]"; C++ function names hold spaces and "::"
_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?([^:\s]*):(.*?)\s+\[([^\]]*)\]\s*$")


def read_counts(out_file: Path) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Inclusive counts per function, exclusive counts per function and per object file."""
    def annotate(inclusive: bool) -> list[tuple[int, str, str]]:
        text = subprocess.run(
            ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100",
             str(out_file)], check=True, capture_output=True, text=True).stdout
        rows = []
        for line in text.splitlines():
            m = _LINE.match(line)
            if m:
                rows.append((int(m.group(1).replace(",", "")), m.group(3), m.group(4)))
        return rows

    inclusive: dict[str, int] = {}
    for count, fn, _obj in annotate(True):
        name = fn.split("'")[0]
        inclusive[name] = max(inclusive.get(name, 0), count)
    exclusive: dict[str, int] = {}
    by_object: dict[str, int] = {}
    for count, fn, obj in annotate(False):
        exclusive[fn] = exclusive.get(fn, 0) + count
        by_object[Path(obj).name] = by_object.get(Path(obj).name, 0) + count
    return inclusive, exclusive, by_object


def summarise(inclusive: dict[str, int], measured_s: float) -> dict[str, float]:
    """Instructions per second of audio per stage (hashes moved from match to fingerprint)."""
    per_s = {s: inclusive.get(TRAMPOLINE + s, 0) / measured_s for s in STAGES}
    hashes = inclusive.get("es_fp_hash", 0) / measured_s
    per_s["fingerprint"] += hashes
    per_s["match"] -= hashes
    total = inclusive.get(TRAMPOLINE + "steady_state", 0) / measured_s
    per_s["glue"] = total - sum(per_s[s] for s in STAGES)
    per_s["total"] = total
    return per_s


# ---- the parent ------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio measured under callgrind")
    ap.add_argument("--warmup", type=float, default=20.0, help="audio fed before measuring")
    ap.add_argument("--hours", type=float, default=10.0, help="catalog size to build")
    ap.add_argument("--rss-minutes", type=float, default=10.0, help="audio fed for the memory figure")
    ap.add_argument("--catalog", type=Path, default=OUT / "pi-catalog")
    ap.add_argument("--from-work", action="store_true",
                    help="only re-read the last run's files under bench-out/pi-budget-work")
    ap.add_argument("--child", choices=("callgrind", "memory"), help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "callgrind":
        child_callgrind(args)
        return
    if args.child == "memory":
        child_memory(args)
        return
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    OUT.mkdir(exist_ok=True)
    catalog = ensure_catalog(args.catalog, args.hours)
    work = OUT / "pi-budget-work"
    work.mkdir(exist_ok=True)
    input_path = work / "input.npy"
    if args.from_work:
        source = json.loads((work / "input.json").read_text())
    else:
        source = make_input(input_path, args.warmup + args.seconds)
        (work / "input.json").write_text(json.dumps(source))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONHASHSEED="0")
    me = [sys.executable, str(Path(__file__).resolve())]
    common = ["--input", str(input_path), "--catalog", str(args.catalog),
              "--warmup", str(args.warmup)]

    cg_out = work / "callgrind.out"
    run_report = work / "callgrind-run.json"
    mem_report = work / "memory-run.json"
    cg_wall = None
    if not args.from_work:
        print(f"callgrind: {args.seconds:g} s of audio after {args.warmup:g} s of warm-up ...",
              file=sys.stderr)
        t0 = time.monotonic()
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg_out}",
                        f"--toggle-collect={TRAMPOLINE}steady_state", "--collect-atstart=no",
                        "--instr-atstart=no",
                        *me, "--child", "callgrind", *common, "--report", str(run_report)],
                       check=True, env=env, stderr=subprocess.DEVNULL)
        cg_wall = round(time.monotonic() - t0, 1)
        print(f"memory: {args.rss_minutes:g} min of audio without valgrind ...", file=sys.stderr)
        subprocess.run([*me, "--child", "memory", *common, "--rss-minutes", str(args.rss_minutes),
                        "--report", str(mem_report)], check=True, env=env)
    run = json.loads(run_report.read_text())
    memory = json.loads(mem_report.read_text())
    inclusive, exclusive, by_object = read_counts(cg_out)
    per_s = summarise(inclusive, run["measured_s"])
    kernels = {k: inclusive.get(k, 0) / run["measured_s"] for k in KERNEL_FUNCTIONS}

    total_ex = sum(by_object.values()) or 1
    top_objects = sorted(by_object.items(), key=lambda kv: -kv[1])[:8]
    top_functions = sorted(exclusive.items(), key=lambda kv: -kv[1])[:15]
    report = {
        "catalog": catalog, "input": source, "run": run, "callgrind_wall_s": cg_wall,
        "instructions_per_audio_second": {k: round(v) for k, v in per_s.items()},
        "kernel_functions_per_audio_second": {k: round(v) for k, v in kernels.items()},
        "exclusive_share_by_object": {k: round(v / total_ex, 4) for k, v in top_objects},
        "top_functions_exclusive_per_audio_second": {
            k: round(v / run["measured_s"]) for k, v in top_functions},
        "memory": memory,
        "targets": {"instructions_per_audio_second": TARGET_INSTR_PER_S, "rss_mb": TARGET_RSS_MB},
    }
    (OUT / "pi-budget.json").write_text(json.dumps(report, indent=1))
    text = render(report)
    (OUT / "pi-budget.md").write_text(text)
    print(text)


def render(r: dict) -> str:
    per_s = r["instructions_per_audio_second"]
    total = per_s["total"]
    mem = r["memory"]
    cat = r["catalog"]
    lines = [
        (f"Pi budget: daemon steady state (earshot.pipeline.Pipeline, {RATE} Hz x {CHANNELS}, "
        f"{HOP_S:g} s hops), {r['run']['measured_s']:g} s measured after {r['run']['warmup_s']:g} s, "
        f"state '{r['run']['state']}' ({r['run']['song']})"),
        (f"catalog: {cat['hours']:.2f} h ({cat['original_hours']:.2f} h soundtracks + "
        f"{cat['variant_hours']:.2f} h slowed x{VARIANT_SPEED:g} copies), {cat['catalog_mb']:.0f} MB"),
        "",
        "| stage | M instructions / s of audio | share |",
        "|---|---:|---:|",
    ]
    for stage in (*STAGES, "glue"):
        lines.append(f"| {stage} | {per_s[stage] / 1e6:.2f} | {per_s[stage] / total:.0%} |")
    verdict = "within" if total <= TARGET_INSTR_PER_S else "OVER"
    lines.append(f"| **total** | **{total / 1e6:.2f}** | target <= {TARGET_INSTR_PER_S / 1e6:.0f}: {verdict} |")
    lines += ["", "C functions inside the stages (inclusive, M instructions / s of audio):", ""]
    lines += [f"- {k}: {v / 1e6:.2f}" for k, v in r["kernel_functions_per_audio_second"].items()]
    lines += ["", "Where the instructions go (exclusive, by object file):", ""]
    lines += [f"- {k}: {v:.0%}" for k, v in r["exclusive_share_by_object"].items()]
    lines += ["", "Busiest functions (exclusive, M instructions / s of audio):", ""]
    lines += [f"- {k}: {v / 1e6:.2f}" for k, v in r["top_functions_exclusive_per_audio_second"].items()]
    mverdict = "within" if mem["hwm_mb"] <= TARGET_RSS_MB else "OVER"
    lines += ["", (f"memory after {mem['minutes']:.1f} min: peak RSS {mem['hwm_mb']:.1f} MB "
              f"(target <= {TARGET_RSS_MB:.0f}: {mverdict}); now {mem['rss_mb']:.1f} MB = "
              f"{mem['anon_mb']:.1f} MB anonymous + {mem['file_mb']:.1f} MB file pages "
              f"(the input array held for the benchmark: {mem['input_array_mb']:.1f} MB)")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
