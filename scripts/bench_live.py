#!/usr/bin/env python3
"""Benchmark of the live listener (issue 4, point 8): an hour of real music with a song change
every few minutes, fed at full speed and in real time through a virtual microphone.

    .venv/bin/python scripts/bench_live.py                        # everything (~1 h 25 min)
    .venv/bin/python scripts/bench_live.py --phases prepare,fast,memory,report
    .venv/bin/python scripts/bench_live.py --phases realtime --realtime-minutes 10

Phases (each writes bench-out/live/<phase>.json; `report` merges what is there):
- prepare: the music (Debian game soundtracks via bench_corpus, split known/unknown with the
  recognition benchmark's seed), a seeded playlist of an hour (catalog songs in segments of
  2-5 minutes, at random points or from the start, a few songs not in the catalog, a few
  silences), its 48 kHz mono mix clean and in the recognition benchmark's "room" damage
  (applied per segment: the previous segment rings into the next; during a silence the
  room's noise and hum go on), the clean mix with people talking over it a third of the time
  (the recognition benchmark's `talk0` speech in bursts, as loud as the music), and a
  catalog of at least 10 hours (the known songs plus more
  Debian soundtracks; never the unknown songs) built once with `earshot ingest`.
- fast: each mix fed through `Pipeline.process` in 0.25 s hops, as fast as it goes: CPU
  seconds per second of audio (whole pipeline incl. Python glue, and per stage), and the
  announcements scored against the playlist.
- memory: peak RSS of a fresh process that streams the clean mix from disk through the
  pipeline with the 10-hour catalog; and of `earshot run --input file:... --fast` (the whole
  daemon), whose events are scored too.
- captures: the clean mix as a sound card delivers it (resampled to 44.1 kHz, two channels),
  the capture starting at N seeded sample offsets within a second, each fed at full speed:
  wrong announcements per capture. A capture's alignment to the fingerprint's frames decides
  which hashes the audio gives, so one real-time hour is one draw: a rule that names a faint
  recording inside another song in some alignments and not others looks clean in one hour and
  wrong in the next (it did: tolerance 1, 2026-12-06). N draws, at full speed, in minutes.
- realtime: the clean mix played with paplay into a private PulseAudio null sink that
  PortAudio sees as ALSA device `vmic` (tests/pulse.py), `earshot run --input mic:vmic`
  listening: overruns and CPU from its health events, latencies from wall-clock times.

Asserts nothing: the figures and the targets they are held to are the output.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_corpus
from bench_corpus import CorpusTrack

OUT = ROOT / "bench-out"
LIVE = OUT / "live"
RATE = 48000
HOP_S = 0.25
SEGMENT_S = (120.0, 300.0)
SILENCE_S = (15.0, 30.0)
FULL_START_FRACTION = 0.3
SHORT_SEGMENT_S = 20.0
OFFSET_TOLERANCE_S = 1.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)   # the audio clock's origin in the fast runs
PHASES = ("prepare", "realtime", "fast", "captures", "memory", "report")
CAPTURE_RATE = 44100   # the rate PulseAudio's default sample spec hands the real-time runs

TARGETS = {"cpu_s_per_s": 0.01, "peak_rss_mb": 80.0, "median_latency_clean_s": 4.0,
           "median_latency_room_s": 8.0, "wrong": 0, "overruns": 0}


# -- the playlist ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    index: int
    kind: str                 # known | unknown | silence
    start_s: float            # in the mix
    length_s: float
    source: str | None = None  # the track's path (the catalog's `source`)
    title: str | None = None
    track_start_s: float = 0.0

    @property
    def end_s(self) -> float:
        return self.start_s + self.length_s


def make_playlist(known: list[CorpusTrack], unknown: list[CorpusTrack], seed: int, hour_s: float,
                  n_unknown: int, n_silence: int) -> list[Segment]:
    """Music segments of 2-5 min until the hour is full; a seeded few are songs not in the
    catalog, a seeded few are followed by a silence. No track plays twice in a row."""
    rng = np.random.default_rng([seed, 40])
    expected = int(hour_s / np.mean(SEGMENT_S))     # music segments the hour holds, about
    unknown_at = {int(i) for i in rng.choice(np.arange(1, expected), size=n_unknown, replace=False)}
    silence_after = {int(i) for i in rng.choice(np.arange(0, expected - 1), size=n_silence, replace=False)}
    known_order = list(rng.permutation(len(known)))
    unknown_order = list(rng.permutation(len(unknown)))
    segments: list[Segment] = []
    t, last, i = 0.0, None, 0
    while t < hour_s - 30.0:
        pool, order = (unknown, unknown_order) if i in unknown_at else (known, known_order)
        k = order.pop(0)
        if pool[k].path == last:
            order.append(k)
            k = order.pop(0)
        order.append(k)
        track = pool[k]
        length = min(float(rng.uniform(*SEGMENT_S)), hour_s - t)
        full = rng.random() < FULL_START_FRACTION or track.duration_s < length + 1.0
        start = 0.0 if full else float(rng.uniform(0.0, track.duration_s - length))
        length = min(length, track.duration_s - start)   # a song shorter than drawn: all of it
        segments.append(Segment(len(segments), "unknown" if i in unknown_at else "known", round(t, 3),
                                round(length, 3), str(track.path), track.title, round(start, 3)))
        t += segments[-1].length_s
        last = track.path
        if i in silence_after and t < hour_s - SILENCE_S[1]:
            gap = round(float(rng.uniform(*SILENCE_S)), 3)
            segments.append(Segment(len(segments), "silence", round(t, 3), gap))
            t += gap
        i += 1
    return segments


def mono_at_rate(path: Path) -> np.ndarray:
    # scipy (bench_queries): kept out of the memory phase's child
    from bench_queries import mono_at

    return mono_at(path, RATE)


def render_clean(segments: list[Segment]) -> np.ndarray:
    total = round(segments[-1].end_s * RATE)
    mix = np.zeros(total, dtype=np.float32)
    for seg in segments:
        if seg.kind == "silence":
            continue
        assert seg.source is not None
        x = mono_at_rate(Path(seg.source))
        a, n = round(seg.track_start_s * RATE), round(seg.length_s * RATE)
        at = round(seg.start_s * RATE)
        piece = x[a:a + n][: total - at]
        mix[at:at + len(piece)] = piece
        print(f"\r  mixing segment {seg.index + 1}/{len(segments)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return mix


def render_room(clean: np.ndarray, segments: list[Segment], seed: int) -> tuple[np.ndarray, dict]:
    """The recognition benchmark's "room" damage, segment by segment (damage.apply reads the
    room's pre-roll from the mix, so a song's reverb tail rings into the next). Noise and hum
    are set against each segment's music; during a silence they go on at the level of the
    music before it (a room does not fall silent when the music stops)."""
    from earshot.testing import damage

    room = damage.standard_damages()["room"]
    out = np.zeros_like(clean)
    prev_power = 0.0
    for seg in segments:
        rng = np.random.default_rng([seed, 41, seg.index])
        at, n = round(seg.start_s * RATE), min(round(seg.length_s * RATE), len(clean) - round(seg.start_s * RATE))
        if seg.kind == "silence":
            y = np.zeros(n)
            if prev_power > 0:
                y += damage.pink_noise(n, RATE, rng) * math.sqrt(prev_power * 10 ** (-room.snr_db / 10))
                y += damage.mains_hum(n, RATE, rng) * math.sqrt(prev_power * 10 ** (room.hum_db / 10))
            out[at:at + n] = y
        else:
            out[at:at + n] = damage.apply(room, clean, RATE, at, n, rng)
            prev_power = damage.power(clean[at:at + n])
    return out, {"damage": asdict(room), "applied": "per playlist segment (damage.apply with the "
                 "room's pre-roll from the mix); silences: the room's pink noise and hum at the "
                 "previous segment's levels"}


def render_talk(clean: np.ndarray, seed: int) -> tuple[np.ndarray, dict]:
    """The clean hour with people talking over it now and then: bursts of 5-20 s of the
    recognition benchmark's `talk0` speech, 10-40 s apart, each as loud as the music around
    it (the 10 s before and the burst; during a silence, the music before it)."""
    from earshot.testing import damage

    rng = np.random.default_rng([seed, 43])
    out = clean.astype(np.float64)
    t, talked, before = float(rng.uniform(5.0, 30.0)), 0.0, 10 * RATE
    while t < len(clean) / RATE - 1.0:
        length = float(rng.uniform(5.0, 20.0))
        at = round(t * RATE)
        n = min(round(length * RATE), len(clean) - at)
        music = clean[max(0, at - before):at + n]
        if damage.power(music) < 1e-8:   # a silence: as loud as the music before it
            music = clean[max(0, at - 6 * before):at]
        out[at:at + n] += damage.scale_to_snr(music, damage.talk_over(n, RATE, rng).astype(np.float64), 0.0)
        talked += n / RATE
        t += length + float(rng.uniform(10.0, 40.0))
    return out.astype(np.float32), {"damage": "talk0 speech in bursts of 5-20 s, 10-40 s apart, at the power "
                                    "of the music around each (before a silence: the music before it)",
                                    "talking_s": round(talked, 1)}


def phase_prepare(args: argparse.Namespace) -> dict[str, Any]:
    if args.music == "unseen":
        # bench_unseen's hold-out: its packages' known half added to the 10-hour catalog
        import bench_unseen

        known, unknown = bench_unseen.split(bench_unseen.unseen_corpus(), bench_unseen.SPLIT_SEED)
        packages = sorted({t.package for t in known + unknown})
        catalog = bench_unseen.ensure_catalog(args.catalog, known, args.seed)
    else:
        packages = bench_corpus.ensure_packages()
        corpus = bench_corpus.build_corpus(packages, OUT / "corpus")
        known, unknown = bench_corpus.split_known_unknown(corpus, args.seed)
        catalog = bench_corpus.ensure_large_catalog(args.catalog, known, unknown, OUT / "corpus")
    plan_file = LIVE / "playlist.json"
    wavs = {c: LIVE / f"hour-{c}.wav" for c in ("clean", "room", "talk")}
    key = {"seed": args.seed, "hour_s": args.hour_s, "unknown_songs": args.unknown_songs,
           "silences": args.silences}
    if args.music != "benchmark":
        key["music"] = args.music
    if args.playlist_seed != args.seed:
        key["playlist_seed"] = args.playlist_seed
    if plan_file.exists() and all(w.exists() for w in wavs.values()):
        old = json.loads(plan_file.read_text())
        if old["key"] == key:
            print("reusing the playlist and its mixes", file=sys.stderr)
            return old
    segments = make_playlist(known, unknown, args.playlist_seed, args.hour_s, args.unknown_songs, args.silences)
    clean = render_clean(segments)
    sf.write(wavs["clean"], clean, RATE, subtype="FLOAT")
    print("  room damage ...", file=sys.stderr)
    room, room_info = render_room(clean, segments, args.playlist_seed)
    sf.write(wavs["room"], room, RATE, subtype="FLOAT")
    print("  people talking ...", file=sys.stderr)
    talk, talk_info = render_talk(clean, args.playlist_seed)
    sf.write(wavs["talk"], talk, RATE, subtype="FLOAT")
    kinds = Counter(s.kind for s in segments)
    out = {"key": key, "catalog": catalog, "rate": RATE, "duration_s": len(clean) / RATE,
           "segments": [asdict(s) for s in segments], "counts": dict(kinds),
           "full_starts": sum(1 for s in segments if s.kind == "known" and s.track_start_s == 0.0),
           "room": room_info, "talk": talk_info, "wavs": {k: str(v) for k, v in wavs.items()},
           "corpus": {"packages": packages, "known_tracks": len(known), "unknown_tracks": len(unknown)}}
    plan_file.write_text(json.dumps(out, indent=1))
    return out


def load_segments(plan: dict[str, Any]) -> list[Segment]:
    return [Segment(**s) for s in plan["segments"]]


# -- scoring -----------------------------------------------------------------------------------
def segment_at(segments: list[Segment], t: float) -> Segment | None:
    for s in segments:
        if s.start_s <= t < s.end_s:
            return s
    return None


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def shared_recording(seg: Segment, wrong: dict[str, Any], heard_s: float = 10.0) -> float | None:
    """Does the unknown song playing really mix in the catalog recording announced? The
    waveform correlation (bench_queries.waveform_correlation, the recognition benchmark's test
    for its false positives) of the `heard_s` before the announcement against the announced
    track where the announcement puts them: >= SHARED_RECORDING means the same recording.
    Diagnostic only: the announcement still counts as wrong."""
    # scipy: kept out of the memory phase's child
    from bench_queries import waveform_correlation

    position = seg.track_start_s + wrong["into_segment_s"]
    offset = wrong["announced_offset_s"] - heard_s
    if wrong["into_segment_s"] < heard_s or offset < 0.3 or not wrong.get("announced_source"):
        return None
    try:
        x = mono_at_rate(Path(seg.source or ""))
        y = mono_at_rate(Path(wrong["announced_source"]))
    except Exception:  # noqa: BLE001 - a diagnostic: a track that will not decode leaves it unknown
        return None
    corr = waveform_correlation(x, round((position - heard_s) * RATE), y, offset, RATE, round(heard_s * RATE))
    return None if math.isnan(corr) else round(corr, 3)


def shared_note(w: dict[str, Any]) -> str:
    from bench_queries import SHARED_RECORDING

    corr = w.get("waveform_corr")
    if corr is None:
        return ""
    if corr >= SHARED_RECORDING:
        return (f"; the unknown song mixes in that recording (waveform correlation {corr:.2f} at the "
                f"announced place, >= {SHARED_RECORDING})")
    return f"; waveform correlation at the announced place {corr:.2f} (chance level: not shared)"


def score(segments: list[Segment], events: list[dict[str, Any]], end_s: float) -> dict[str, Any]:
    """Announcements against the playlist. Each event has `t`: seconds since the mix began."""
    matches = [e for e in events if e["event"] == "match"]
    states = [e for e in events if e["event"] == "now_playing"]
    first: dict[int, dict] = {}
    announcements: Counter = Counter()
    wrong: list[dict[str, Any]] = []
    offset_errors: list[float] = []
    wrong_offsets: list[dict[str, Any]] = []
    for m in matches:
        seg = segment_at(segments, m["t"])
        if seg is not None and seg.kind == "known" and m["source"] == seg.source:
            expected = seg.track_start_s + (m["t"] - seg.start_s)
            err = m["offset_s"] - expected
            offset_errors.append(err)
            announcements[seg.index] += 1
            if abs(err) > OFFSET_TOLERANCE_S:
                wrong_offsets.append({"segment": seg.index, "t": round(m["t"], 2), "error_s": round(err, 2)})
            first.setdefault(seg.index, m)
            continue
        prev = segments[seg.index - 1] if seg is not None and seg.index > 0 else None
        what = ("after the end" if seg is None else f"during {'an unknown song' if seg.kind == 'unknown' else seg.kind}"
                if seg.kind != "known" else "during another catalog song")
        if prev is not None and prev.source == m["source"] or (
                prev is not None and prev.kind == "silence" and seg.index > 1 and segments[seg.index - 2].source == m["source"]):
            what += " (names the song before)"
        wrong.append({"t": round(m["t"], 2), "segment": None if seg is None else seg.index,
                      "playing": None if seg is None else seg.title, "announced": m["title"],
                      "announced_source": m["source"], "announced_offset_s": m["offset_s"],
                      "confidence": m["confidence"], "kind": what,
                      "into_segment_s": None if seg is None else round(m["t"] - seg.start_s, 2)})
    # playing intervals: from a `playing` state to the next state change
    intervals: list[dict[str, Any]] = []
    moves = 0
    for e in states:
        if e["previous"] == "playing" and e["state"] == "playing":
            moves += 1  # the song followed to another place in it: it goes on playing
            continue
        if e["previous"] == "playing" and intervals and intervals[-1]["end"] is None:
            intervals[-1]["end"] = e["t"]
            intervals[-1]["reason"] = e.get("reason")
        if e["state"] == "playing":
            intervals.append({"start": e["t"], "end": None, "source": e.get("source")})
    known = [s for s in segments if s.kind == "known"]
    latencies = [first[s.index]["t"] - s.start_s for s in known if s.index in first]
    reported = [first[s.index]["latency_s"] for s in known if s.index in first]
    missed = [s for s in known if s.index not in first]
    ends: dict[str, list[float]] = defaultdict(list)
    premature: list[dict[str, Any]] = []
    for s in known:
        if s.index not in first:
            continue
        t_ann = first[s.index]["t"]
        after = [iv for iv in intervals if iv["source"] == s.source and iv["start"] >= t_ann - 1e-6]
        nxt = segments[s.index + 1] if s.index + 1 < len(segments) else None
        follows = "end of the hour" if nxt is None else ("silence" if nxt.kind == "silence" else
                                                          "unknown song" if nxt.kind == "unknown" else "catalog song")
        # the last interval of this song that began while it played
        mine = [iv for iv in after if iv["start"] < s.end_s]
        for iv in mine:
            if iv["end"] is not None and iv["end"] < s.end_s - 1.0:
                premature.append({"segment": s.index, "title": s.title, "ended_at_s": round(iv["end"] - s.start_s, 1),
                                  "segment_s": round(s.length_s, 1), "reason": iv.get("reason")})
        if nxt is not None and mine and mine[-1]["end"] is not None:
            ends[follows].append(mine[-1]["end"] - s.end_s)
    for w in wrong:
        seg = segments[w["segment"]] if w["segment"] is not None else None
        if seg is not None and seg.kind == "unknown" and seg.source:
            w["waveform_corr"] = shared_recording(seg, w)
    kinds = Counter(w["kind"] for w in wrong)
    return {
        "catalog_segments": len(known),
        "announced": len(known) - len(missed),
        "latency_s": {"n": len(latencies), "median": pct(latencies, 50), "p95": pct(latencies, 95),
                      "max": max(latencies) if latencies else None,
                      "values": [round(v, 2) for v in latencies]},
        "reported_latency_s": {"median": pct(reported, 50), "p95": pct(reported, 95)},
        "missed": len(missed),
        "missed_short": sum(1 for s in missed if s.length_s < SHORT_SEGMENT_S),
        "short_segments": sum(1 for s in known if s.length_s < SHORT_SEGMENT_S),
        "missed_segments": [{"segment": s.index, "title": s.title, "length_s": s.length_s,
                             "track_start_s": s.track_start_s} for s in missed],
        "wrong": len(wrong), "wrong_by_kind": dict(kinds), "wrong_list": wrong,
        "repeat_announcements": sum(v - 1 for v in announcements.values() if v > 1),
        "wrong_offsets": wrong_offsets,
        "offset_error_s": {"median_abs": pct([abs(e) for e in offset_errors], 50),
                           "max_abs": max((abs(e) for e in offset_errors), default=None)},
        "end_latency_s": {k: {"n": len(v), "median": pct(v, 50), "max": max(v), "values": [round(x, 2) for x in v]}
                          for k, v in ends.items()},
        "premature_ends": premature,
        "moves": moves,
        "events": dict(Counter(e["event"] for e in events)),
    }


def event_record(e: Any, t: float) -> dict[str, Any]:
    """What scoring needs of an event (pydantic model or its JSON dict)."""
    d = e if isinstance(e, dict) else e.to_json_dict()
    r: dict[str, Any] = {"event": d["event"], "t": t}
    if d["event"] == "match":
        r.update({k: d[k] for k in ("track_id", "title", "source", "offset_s", "confidence", "latency_s", "speed")})
    elif d["event"] == "now_playing":
        r.update(state=d["state"], previous=d["previous"], reason=d.get("reason"),
                 source=(d.get("track") or {}).get("source"))
    elif d["event"] == "health":
        r.update({k: d[k] for k in ("overruns", "dropped_frames", "cpu_percent", "audio_s", "device_state",
                                    "device_errors", "sample_rate")})
    elif d["event"] == "song_report":
        r.update(title=d["track"]["title"], duration_heard_s=d["duration_heard_s"],
                 integrated_lufs=d["integrated_lufs"])
    return r


# -- full speed ----------------------------------------------------------------------------
STAGE_ORDER = ("loudness meter (C)", "resample to the fingerprint rate (C)", "spectral peaks (C)",
               "matcher.add_peaks: hash, lookup, hits", "evaluation (2/s): NowPlaying + evict",
               "  of which NowPlaying.update (scoring)", "  catalog.lookup (LMDB), within the two above",
               "loudness events", "glue (process() outside the stages)")

class StageTimer:
    """Thread CPU time spent in wrapped methods (re-entrant calls counted once)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.calls: Counter = Counter()

    def wrap(self, obj: Any, attr: str, name: str) -> None:
        fn = getattr(obj, attr)
        depth = [0]

        def timed(*a: Any, **k: Any) -> Any:
            if depth[0]:
                return fn(*a, **k)
            depth[0] += 1
            t = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                self.totals[name] += time.thread_time() - t
                self.calls[name] += 1
                depth[0] -= 1

        setattr(obj, attr, timed)


def open_pipeline(catalog_dir: Path, channels: int = 1, rate: int = RATE) -> Any:
    from earshot.catalog import Catalog
    from earshot.config import parse_config
    from earshot.pipeline import Pipeline, audio_clock_stamp

    catalog = Catalog.open(catalog_dir, readonly=True)   # as the service opens it
    # [listen] at its defaults plus EARSHOT_LISTEN__* (--listen), as `earshot run` reads them
    listen = parse_config({}, "the built-in defaults", os.environ).listen
    return Pipeline(catalog, rate, channels, listen=listen, stamp=audio_clock_stamp(T0))


def feed(pipe: Any, frames: np.ndarray, hop: int) -> list[Any]:
    """A (frames, channels) signal through the pipeline hop by hop, then flushed: its events."""
    events: list[Any] = []
    for i in range(0, len(frames), hop):
        events += pipe.process(frames[i:i + hop])
    return events + pipe.flush()


def recorded(events: list[Any], lead_s: float = 0.0) -> list[dict[str, Any]]:
    """The events scoring reads, on the mix's clock (`lead_s`: audio heard before the mix began)."""
    return [event_record(e, (e.ts - T0).total_seconds() - lead_s) for e in events
            if e.event in ("match", "now_playing", "song_report")]


def feed_fast(wav: Path, catalog_dir: Path, stages: bool, profile: Path | None = None,
              limit_s: float | None = None) -> dict[str, Any]:
    x, rate = sf.read(str(wav), dtype="float32")
    assert rate == RATE
    if limit_s:
        x = x[: round(limit_s * RATE)]
    pipe = open_pipeline(catalog_dir)
    timer = StageTimer()
    if stages:
        timer.wrap(pipe.meter, "process", "loudness meter (C)")
        timer.wrap(pipe.resampler, "process", "resample to the fingerprint rate (C)")
        timer.wrap(pipe.peaks, "process", "spectral peaks (C)")
        timer.wrap(pipe.session, "add_peaks", "matcher.add_peaks: hash, lookup, hits")
        timer.wrap(pipe.session.catalog, "lookup_grouped", "  catalog.lookup (LMDB), within the two above")
        timer.wrap(pipe, "_evaluate", "evaluation (2/s): NowPlaying + evict")
        timer.wrap(pipe.nowplaying, "update", "  of which NowPlaying.update (scoring)")
        timer.wrap(pipe, "loudness_event", "loudness events")
    hop = round(HOP_S * RATE)
    prof = None
    if profile is not None:
        import cProfile
        prof = cProfile.Profile()
    ru0, c0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    events = feed(pipe, x[:, None], hop)
    if prof:
        prof.disable()
    c1, w1, ru1 = time.process_time(), time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    audio_s = len(x) / RATE
    cpu = c1 - c0
    out: dict[str, Any] = {
        "audio_s": audio_s, "cpu_s": cpu, "cpu_s_per_s": cpu / audio_s, "wall_s": w1 - w0,
        "user_s": ru1.ru_utime - ru0.ru_utime, "sys_s": ru1.ru_stime - ru0.ru_stime,
        "major_faults": ru1.ru_majflt - ru0.ru_majflt, "minor_faults": ru1.ru_minflt - ru0.ru_minflt,
        "pipeline_busy_s": pipe.stats.busy_s, "blocks": pipe.stats.blocks, "channels": 1, "rate": RATE,
        "hop_s": HOP_S,
    }
    if stages:
        t = dict(timer.totals)
        top = ("loudness meter (C)", "resample to the fingerprint rate (C)", "spectral peaks (C)",
               "matcher.add_peaks: hash, lookup, hits", "evaluation (2/s): NowPlaying + evict", "loudness events")
        out["stages_s_per_s"] = {k: v / audio_s for k, v in t.items()}
        out["stages_s_per_s"]["glue (process() outside the stages)"] = (
            pipe.stats.busy_s - sum(t.get(k, 0) for k in top)) / audio_s
    if prof is not None:
        import pstats
        prof.dump_stats(str(profile))
        with open(str(profile) + ".txt", "w") as fh:
            pstats.Stats(prof, stream=fh).sort_stats("tottime").print_stats(30)
    out["events"] = recorded(events)
    out["event_counts"] = dict(Counter(e.event for e in events))
    pipe.catalog.close()
    return out


def phase_fast(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    segments = load_segments(plan)
    result: dict[str, Any] = {}
    for cond in args.conditions:
        print(f"  full speed, {cond} ...", file=sys.stderr)
        r = feed_fast(Path(plan["wavs"][cond]), args.catalog, stages=True,
                      profile=LIVE / f"profile-{cond}.prof" if args.profile else None)
        r["score"] = score(segments, r["events"], plan["duration_s"])
        result[cond] = r
        print(f"    {r['cpu_s_per_s']:.4f} CPU s/s, median latency {r['score']['latency_s']['median']}, "
              f"wrong {r['score']['wrong']}, missed {r['score']['missed']}", file=sys.stderr)
    if "clean" in args.conditions and args.plain_check:
        # the same without the stage timers: their own cost is not the pipeline's
        r = feed_fast(Path(plan["wavs"]["clean"]), args.catalog, stages=False)
        result["clean_untimed"] = {k: r[k] for k in ("cpu_s", "cpu_s_per_s", "user_s", "sys_s", "wall_s")}
    return result


def feed_capture(wav: str, catalog_dir: str, shift: int) -> dict[str, Any]:
    """The clean mix as a 44.1 kHz stereo capture that began `shift` samples before the mix:
    its events, on the mix's clock."""
    from earshot.audio.resample import resample

    x, rate = sf.read(wav, dtype="float32")
    x = np.concatenate([np.zeros(shift, np.float32), resample(x, rate, CAPTURE_RATE).astype(np.float32)])
    pipe = open_pipeline(Path(catalog_dir), channels=2, rate=CAPTURE_RATE)
    c0 = time.process_time()
    events = feed(pipe, np.broadcast_to(x[:, None], (len(x), 2)), round(HOP_S * CAPTURE_RATE))
    cpu = time.process_time() - c0
    pipe.catalog.close()
    return {"shift": shift, "cpu_s_per_s": cpu / (len(x) / CAPTURE_RATE),
            "events": recorded(events, shift / CAPTURE_RATE)}


def phase_captures(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    segments = load_segments(plan)
    rng = np.random.default_rng(args.seed)
    shifts = sorted(int(v) for v in rng.integers(0, CAPTURE_RATE, args.captures))
    wav = str(plan["wavs"]["clean"])
    runs = []
    print(f"  {len(shifts)} captures at {CAPTURE_RATE} Hz, {args.jobs} at a time ...", file=sys.stderr)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for r in pool.map(feed_capture, [wav] * len(shifts), [str(args.catalog)] * len(shifts), shifts):
            sc = score(segments, r.pop("events"), plan["duration_s"])
            r.update(announced=sc["announced"], catalog_segments=sc["catalog_segments"],
                     latency_median_s=sc["latency_s"]["median"], latency_p95_s=sc["latency_s"]["p95"],
                     wrong=sc["wrong"], wrong_list=sc["wrong_list"], missed=sc["missed"],
                     repeats=sc["repeat_announcements"], premature_ends=len(sc["premature_ends"]))
            runs.append(r)
            print(f"    shift {r['shift']}: median {fmt(r['latency_median_s'])} s, wrong {r['wrong']}, "
                  f"missed {r['missed']}", file=sys.stderr)
    lat = [r["latency_median_s"] for r in runs if r["latency_median_s"] is not None]
    return {"rate": CAPTURE_RATE, "channels": 2, "runs": runs,
            "wrong_total": sum(r["wrong"] for r in runs),
            "captures_with_wrong": sum(1 for r in runs if r["wrong"]),
            "latency_median_s": {"min": min(lat, default=None), "median": pct(lat, 50), "max": max(lat, default=None)}}


# -- memory ---------------------------------------------------------------------------------
def status_kb(pid: str = "self") -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":")[0]
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
            out[key] = int(line.split()[1])
    return out


def mapped_kb(name: str) -> int:
    """Resident kB of this process's mappings of files called `name` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and ":" not in head[0]:   # a mapping's first line
            inside = len(head) >= 6 and Path(head[-1]).name == name
        elif inside and line.startswith("Rss:"):
            total += int(head[1])
    return total


def memrun(wav: Path, catalog_dir: Path) -> None:
    """(In a fresh process) the pipeline over a WAV streamed from disk; prints its memory."""
    import gc

    base = status_kb()
    pipe = open_pipeline(catalog_dir)
    opened = status_kb()
    hop = round(HOP_S * RATE)
    largest_anon = 0
    with sf.SoundFile(str(wav)) as f:
        blocks = 0
        while True:
            block = f.read(hop, dtype="float32", always_2d=True)
            if not len(block):
                break
            for e in pipe.process(block):
                e.to_json()          # as the JSON-lines sink would
            blocks += 1
            if blocks % 240 == 0:
                largest_anon = max(largest_anon, status_kb()["RssAnon"])
    for e in pipe.flush():
        e.to_json()
    gc.collect()
    end = status_kb()
    print(json.dumps({"before_kb": base, "after_open_kb": opened, "end_kb": end,
                      "catalog_map_kb": mapped_kb("data.mdb"),
                      "catalog_file_kb": (catalog_dir / "data.mdb").stat().st_size // 1024,
                      "largest_rss_anon_kb": largest_anon,
                      "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "audio_s": pipe.stats.audio_s}))


def drop_page_cache_of(path: Path) -> None:
    """Evict a file from the page cache (so a fresh process's RSS is not flattered or
    inflated by what an earlier phase read)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    except OSError:
        pass


def phase_memory(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    wav = Path(plan["wavs"]["clean"])
    print("  memory: pipeline over the hour in a fresh process ...", file=sys.stderr)
    proc = subprocess.run([sys.executable, __file__, "--memrun", str(wav), "--catalog", str(args.catalog)],
                          capture_output=True, text=True, check=True)
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    out: dict[str, Any] = {"pipeline_process": {
        # the child's own high-water mark: ru_maxrss would include the parent's (a process
        # started with vfork + exec keeps the larger of its own and the parent's peak, ~935 MB
        # after `fast` has read the hour into memory)
        "peak_rss_mb": m["end_kb"]["VmHWM"] / 1024, "ru_maxrss_mb": m["ru_maxrss_kb"] / 1024,
        "after_imports_mb": m["before_kb"]["VmRSS"] / 1024, "after_catalog_open_mb": m["after_open_kb"]["VmRSS"] / 1024,
        "end_rss_anon_mb": m["end_kb"]["RssAnon"] / 1024, "end_rss_file_mb": m["end_kb"]["RssFile"] / 1024,
        "largest_rss_anon_mb": m["largest_rss_anon_kb"] / 1024, "audio_s": m["audio_s"],
        # of the file-backed pages, the catalog's: LMDB reads through a map, and the kernel's
        # fault-around maps the 64 kB around every page read (MADV_RANDOM does not stop it),
        # so a few minutes of lookups map about the whole file
        "end_catalog_map_mb": m["catalog_map_kb"] / 1024, "catalog_file_mb": m["catalog_file_kb"] / 1024}}
    print("  memory: earshot run --input file:... --fast ...", file=sys.stderr)
    cmd = [sys.executable, "-m", "earshot", "run", "--input", f"file:{wav}", "--fast", "--catalog", str(args.catalog)]
    t0 = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-f", "TIME %M %U %S %e", *cmd], capture_output=True, text=True,
                         check=False)
    wall = time.perf_counter() - t0
    line = [ln for ln in run.stderr.splitlines() if ln.startswith("TIME ")][-1].split()
    maxrss_kb, user, system, _elapsed = int(line[1]), float(line[2]), float(line[3]), float(line[4])
    events = [json.loads(ln) for ln in run.stdout.splitlines() if ln.startswith("{")]
    start = None
    recs = []
    for e in events:
        ts = datetime.fromisoformat(e["ts"])
        if e["event"] in ("match", "now_playing", "song_report"):
            recs.append((ts, e))
    # the CLI's audio clock starts when the pipeline starts: the first loudness event is at 5 s
    loud = [datetime.fromisoformat(e["ts"]) for e in events if e["event"] == "loudness"]
    start = loud[0] - (loud[1] - loud[0]) if len(loud) > 1 else None
    scored = None
    if start is not None:
        recs2 = [event_record(e, (ts - start).total_seconds()) for ts, e in recs]
        scored = score(load_segments(plan), recs2, plan["duration_s"])
    out["earshot_run_fast"] = {"exit_status": run.returncode, "peak_rss_mb": maxrss_kb / 1024,
                               "user_s": user, "sys_s": system, "wall_s": wall,
                               "cpu_s_per_s": (user + system) / plan["duration_s"],
                               "event_counts": dict(Counter(e["event"] for e in events)),
                               "score": scored, "stderr_tail": run.stderr[-800:]}
    return out


# -- real time ---------------------------------------------------------------------------------
def phase_realtime(args: argparse.Namespace, plan: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    import pulse

    why = pulse.available()
    if why:
        return {"skipped": why}
    minutes = args.realtime_minutes
    wav = Path(plan["wavs"]["clean"])
    if minutes * 60 < plan["duration_s"] - 1:
        part = LIVE / f"hour-clean-{minutes:g}min.wav"
        if not part.exists():
            x, _ = sf.read(str(wav), dtype="float32", frames=round(minutes * 60 * RATE))
            sf.write(part, x, RATE, subtype="FLOAT")
        wav = part
    played_s = sf.info(str(wav)).duration
    root = LIVE / "vmic"
    root.mkdir(parents=True, exist_ok=True)
    vm = pulse.VirtualMic(root)
    vm.start()
    env = dict(vm.env, EARSHOT_LISTEN__HEALTH_INTERVAL_S=str(args.health_interval))
    log = open(LIVE / "realtime-stderr.log", "w")  # noqa: SIM115 - closed in the finally below
    cmd = [sys.executable, "-m", "earshot", "run", "--input", "mic:vmic", "--catalog", str(args.catalog)]
    daemon = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                              start_new_session=True)
    lines: list[tuple[float, dict]] = []
    hwm: list[int] = []
    loads: list[float] = []

    def reader() -> None:
        assert daemon.stdout is not None
        with open(LIVE / "realtime-events.jsonl", "w") as raw:
            for line in daemon.stdout:
                raw.write(line)
                raw.flush()
                if line.startswith("{"):
                    lines.append((time.time(), json.loads(line)))

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        deadline = time.monotonic() + 30
        time.sleep(3.0)
        while not lines and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(0.5)   # the first loudness event: the device is open and audio flows
        if daemon.poll() is not None:
            return {"failed": f"earshot run exited {daemon.returncode}: see {LIVE / 'realtime-stderr.log'}"}
        play_t0 = datetime.now(UTC)
        player = vm.play(wav)
        print(f"  real time: playing {played_s / 60:.1f} min into the virtual microphone ...", file=sys.stderr)
        while player.poll() is None:
            time.sleep(5)
            loads.append(os.getloadavg()[0])
            try:
                hwm.append(status_kb(str(daemon.pid))["VmHWM"])
            except OSError:
                break
        play_end = datetime.now(UTC)
        time.sleep(args.tail_s)    # the end of the last song
        try:
            final = status_kb(str(daemon.pid))
        except OSError:
            final = {}
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        th.join(5)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        vm.stop()
        log.close()
    segments = [s for s in load_segments(plan) if s.start_s < played_s - 1.0]
    if segments and segments[-1].end_s > played_s:   # a shorter run: its last segment ends with it
        last_seg = segments[-1]
        segments[-1] = Segment(**{**asdict(last_seg), "length_s": played_s - last_seg.start_s})
    recs = []
    for _, e in lines:
        ts = datetime.fromisoformat(e["ts"])
        recs.append(event_record(e, (ts - play_t0).total_seconds()))
    health = [r for r in recs if r["event"] == "health"]
    scored = score(segments, recs, played_s)
    # the sound path's delay: where the song was said to be against where the playlist had it
    delays = []
    for r in recs:
        if r["event"] == "match":
            seg = segment_at(segments, r["t"])
            if seg is not None and seg.source == r["source"]:
                delays.append(seg.track_start_s + (r["t"] - seg.start_s) - r["offset_s"])
    cpu = [h["cpu_percent"] for h in health if h["t"] > 0]
    last = health[-1] if health else {}
    return {
        "played_s": played_s, "wall_s": (play_end - play_t0).total_seconds(),
        "channels": 2, "sample_rate": last.get("sample_rate"),
        "device": "vmic (PulseAudio null sink monitor via ALSA pulse plugin)",
        "health_events": len(health), "overruns": last.get("overruns"), "dropped_frames": last.get("dropped_frames"),
        "device_errors": last.get("device_errors"),
        "max_overruns": max((h["overruns"] for h in health), default=None),
        "cpu_percent": {"median": pct(cpu, 50), "max": max(cpu, default=None), "mean": float(np.mean(cpu)) if cpu else None},
        "audio_s_processed": last.get("audio_s"),
        "peak_rss_mb": (max(hwm + [final.get("VmHWM", 0)]) / 1024) if hwm or final else None,
        "final_rss_anon_mb": final.get("RssAnon", 0) / 1024, "final_rss_file_mb": final.get("RssFile", 0) / 1024,
        "sound_path_delay_s": {"median": pct(delays, 50), "min": min(delays, default=None), "max": max(delays, default=None)},
        "daemon_exit": daemon.returncode, "score": scored,
        "machine_load_1min": {"median": pct(loads, 50), "max": max(loads, default=None)},
        "note": "latencies from the wall clock: event ts against paplay's start plus the segment's place in the mix",
    }


# -- the report --------------------------------------------------------------------------------
def code_version() -> str:
    """The commit under test, with "+dirty" when daemon/ or native/ differ from it."""
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True,
                              check=False).stdout.strip()

    return (git("rev-parse", "--short", "HEAD") or "unknown") + (
        "+dirty" if git("status", "--porcelain", "daemon", "native") else "")


def fmt(v: Any, digits: int = 2, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}{unit}"
    return f"{v}{unit}"


def render(report: dict[str, Any]) -> str:
    plan, fast, mem, rt, caps = (report.get(k) or {} for k in ("prepare", "fast", "memory", "realtime", "captures"))
    cat = plan.get("catalog", {})
    lines = ["# Live listener benchmark (issue 4)", "",
             "Code: " + ", ".join(f"{k} {v['code']}" for k, v in (("full speed", fast), ("captures", caps),
                                                                 ("memory", mem), ("real time", rt))
                                 if v.get("code")), ""]
    if plan:
        c = plan["counts"]
        lines += [
            (f"Playlist: {plan['duration_s'] / 60:.1f} min, seed {plan['key']['seed']}: {c.get('known', 0)} catalog "
            f"segments ({plan['full_starts']} from the song's start), {c.get('unknown', 0)} songs not in the catalog, "
            f"{c.get('silence', 0)} silences; 48 kHz mono, 0.25 s hops."),
            (f"Catalog: {cat.get('hours', 0):.2f} h, {cat.get('tracks')} tracks, {cat.get('postings', 0):,} postings, "
            f"{cat.get('file_mb', 0):.0f} MB ({', '.join(cat.get('packages', []))})."),
            ("Room: the recognition benchmark's `room` damage (RT60 0.7 s, pink noise at 5 dB SNR, mains hum "
            "at -15 dB), per segment."),
            (f"Talk: the clean hour with people talking over it, {plan.get('talk', {}).get('talking_s', 0) / 60:.0f} "
            "min of the hour: the recognition benchmark's `talk0` speech in bursts of 5-20 s, 10-40 s apart, "
            "as loud as the music around each."), ""]
    cols = [("clean (full speed)", (fast.get("clean") or {}).get("score")),
            ("room (full speed)", (fast.get("room") or {}).get("score")),
            ("talk (full speed)", (fast.get("talk") or {}).get("score")),
            ("real time (vmic, clean)", rt.get("score"))]
    cols = [(n, s) for n, s in cols if s]
    if cols:
        lines += ["| announcements | " + " | ".join(n for n, _ in cols) + " |",
                  "|---|" + "---|" * len(cols)]

        def row(name: str, f: Any) -> None:
            lines.append(f"| {name} | " + " | ".join(f(s) for _, s in cols) + " |")

        row("catalog segments announced", lambda s: f"{s['announced']}/{s['catalog_segments']}")
        row("latency median (s)", lambda s: fmt(s["latency_s"]["median"]))
        row("latency p95 (s)", lambda s: fmt(s["latency_s"]["p95"]))
        row("latency max (s)", lambda s: fmt(s["latency_s"]["max"]))
        row("missed (of them < 20 s)", lambda s: f"{s['missed']} ({s['missed_short']})")
        row("wrong announcements", lambda s: str(s["wrong"]))
        row("repeat announcements of a segment", lambda s: str(s["repeat_announcements"]))
        row("offset error, median abs (s)", lambda s: fmt(s["offset_error_s"]["median_abs"], 3))
        row("announcements > 1 s off", lambda s: str(len(s["wrong_offsets"])))
        for k in ("silence", "catalog song", "unknown song"):
            row(f"end → `ended`, next: {k} (median s, n)",
                lambda s, k=k: (f"{fmt(s['end_latency_s'][k]['median'], 1)} (n={s['end_latency_s'][k]['n']})"
                                if k in s["end_latency_s"] else "–"))
        row("ended while the song still played", lambda s: str(len(s["premature_ends"])))
        row("songs followed to another place in them", lambda s: str(s.get("moves", 0)))
        lines.append("")
    if caps.get("runs"):
        runs = caps["runs"]
        lat = caps["latency_median_s"]
        lines += [f"Captures: the clean hour at {caps['rate']} Hz, two channels, from {len(runs)} sample offsets "
                  "(seeded), full speed.", "",
                  "| captures | |", "|---|---|",
                  f"| wrong announcements (captures with any) | {caps['wrong_total']} ({caps['captures_with_wrong']} "
                  f"of {len(runs)}) |",
                  f"| catalog segments announced, fewest | {min(r['announced'] for r in runs)}/"
                  f"{runs[0]['catalog_segments']} |",
                  f"| latency median per capture, min / median / max (s) | {fmt(lat['min'])} / {fmt(lat['median'])} / "
                  f"{fmt(lat['max'])} |",
                  f"| repeat announcements / songs ended while playing, all captures | "
                  f"{sum(r['repeats'] for r in runs)} / {sum(r['premature_ends'] for r in runs)} |", ""]
        wrongs = [(r["shift"], w) for r in runs for w in r["wrong_list"]]
        if wrongs:
            lines.append("Wrong announcements, captures:")
            lines += [f"- offset {shift}: at {w['t']:.1f} s ({w['into_segment_s']} s into segment {w['segment']}, "
                      f"playing {w['playing']}): announced {w['announced']} — {w['kind']}" + shared_note(w)
                      for shift, w in wrongs]
            lines.append("")
    if fast:
        lines += ["| CPU, full speed | clean | room |", "|---|---|---|"]
        cl, ro = fast.get("clean") or {}, fast.get("room") or {}
        lines.append(f"| CPU s per s of audio (process_time, whole loop) | {fmt(cl.get('cpu_s_per_s'), 4)} | "
                     f"{fmt(ro.get('cpu_s_per_s'), 4)} |")
        if "clean_untimed" in fast:
            lines.append(f"| ... without the stage timers | {fmt(fast['clean_untimed']['cpu_s_per_s'], 4)} | |")
        lines.append(f"| user / sys s per s | {fmt(cl.get('user_s', 0) / max(cl.get('audio_s', 1), 1), 4)} / "
                     f"{fmt(cl.get('sys_s', 0) / max(cl.get('audio_s', 1), 1), 4)} | "
                     f"{fmt(ro.get('user_s', 0) / max(ro.get('audio_s', 1), 1), 4)} / "
                     f"{fmt(ro.get('sys_s', 0) / max(ro.get('audio_s', 1), 1), 4)} |")
        for k in sorted(cl.get("stages_s_per_s") or {}, key=lambda k: STAGE_ORDER.index(k) if k in STAGE_ORDER else 99):
            lines.append(f"| stage: {k} | {fmt(cl['stages_s_per_s'][k], 5)} | "
                         f"{fmt((ro.get('stages_s_per_s') or {}).get(k), 5)} |")
        lines.append("")
    if mem or rt:
        lines += ["| memory, 10-hour catalog | peak RSS MB |", "|---|---|"]
        p = mem.get("pipeline_process")
        if p:
            lines.append(f"| fresh process, pipeline over the hour (its VmHWM) | {p['peak_rss_mb']:.1f} |")
            lines.append(f"| ... after imports / after opening the catalog | {p['after_imports_mb']:.1f} / "
                         f"{p['after_catalog_open_mb']:.1f} |")
            lines.append(f"| ... at the end: anonymous / file-backed (LMDB map, libraries) | "
                         f"{p['end_rss_anon_mb']:.1f} / {p['end_rss_file_mb']:.1f} |")
            if "end_catalog_map_mb" in p:
                lines.append(f"| ... of the file-backed: the catalog's LMDB map (the file is "
                             f"{p['catalog_file_mb']:.1f} MB) | {p['end_catalog_map_mb']:.1f} |")
        r = mem.get("earshot_run_fast")
        if r:
            lines.append(f"| `earshot run --input file:… --fast` (whole daemon) | {r['peak_rss_mb']:.1f} |")
        if rt.get("peak_rss_mb"):
            lines.append(f"| `earshot run --input mic:vmic`, real time (VmHWM) | {rt['peak_rss_mb']:.1f} |")
        lines.append("")
    if rt and "score" in rt:
        lines += ["| real time (vmic) | |", "|---|---|",
                  (f"| audio played | {rt['played_s'] / 60:.1f} min; captured {rt.get('channels')} channels at "
                  f"{rt.get('sample_rate')} Hz |"),
                  (f"| machine load (1-min average, median / max) | {fmt((rt.get('machine_load_1min') or {}).get('median'))}"
                  f" / {fmt((rt.get('machine_load_1min') or {}).get('max'))} |"),
                  (f"| overruns / dropped frames / device errors | {rt['overruns']} / {rt['dropped_frames']} / "
                  f"{rt['device_errors']} |"),
                  (f"| CPU % of one core (health, median / max) | {fmt(rt['cpu_percent']['median'])} / "
                  f"{fmt(rt['cpu_percent']['max'])} |"),
                  f"| sound path delay (median s) | {fmt(rt['sound_path_delay_s']['median'])} |", ""]
    elif rt:
        lines += [f"Real time: {rt}", ""]
    for name, sc in cols:
        if sc["wrong_list"]:
            lines.append(f"Wrong announcements, {name}:")
            lines += [f"- at {w['t']:.1f} s ({w['into_segment_s']} s into segment {w['segment']}, playing "
                      f"{w['playing']}): announced {w['announced']}, confidence {w['confidence']} — {w['kind']}"
                      + shared_note(w) for w in sc["wrong_list"]]
            lines.append("")
        if sc["missed_segments"]:
            lines.append(f"Missed, {name}: " + "; ".join(
                f"segment {m['segment']} {m['title']} ({m['length_s']:.0f} s from {m['track_start_s']:.0f} s)"
                for m in sc["missed_segments"]))
            lines.append("")
    if report.get("targets"):
        lines += ["| target | figure | met |", "|---|---|---|"]
        for t in report["targets"]:
            lines.append(f"| {t['name']} | {fmt(t['value'], 4)} | {'yes' if t['met'] else '**no**'} |")
        lines.append("")
    return "\n".join(lines)


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    fast, mem, rt, caps = (report.get(k) or {} for k in ("fast", "memory", "realtime", "captures"))

    def add(name: str, value: Any, limit: float) -> None:
        if value is not None:
            out.append({"name": name, "value": value, "limit": limit, "met": value <= limit})

    add("CPU s per s of audio (clean) ≤ 0.01", (fast.get("clean") or {}).get("cpu_s_per_s"), 0.01)
    add("CPU s per s of audio (room) ≤ 0.01", (fast.get("room") or {}).get("cpu_s_per_s"), 0.01)
    add("peak RSS, pipeline process ≤ 80 MB", (mem.get("pipeline_process") or {}).get("peak_rss_mb"), 80.0)
    add("peak RSS, earshot run (real time) ≤ 80 MB", rt.get("peak_rss_mb"), 80.0)
    for cond, limit in (("clean", 4.0), ("room", 8.0)):
        s = (fast.get(cond) or {}).get("score")
        if s:
            add(f"median announcement latency, {cond} ≤ {limit:g} s", s["latency_s"]["median"], limit)
            add(f"wrong announcements, {cond} = 0", s["wrong"], 0)
    if (fast.get("talk") or {}).get("score"):   # not an issue's condition, but a room's
        add("wrong announcements, talk = 0", fast["talk"]["score"]["wrong"], 0)
    if caps.get("runs"):
        add(f"wrong announcements, {len(caps['runs'])} captures at {caps['rate']} Hz = 0", caps["wrong_total"], 0)
    if rt.get("score"):
        add("wrong announcements, real time = 0", rt["score"]["wrong"], 0)
        add("overruns at real time = 0", rt.get("overruns"), 0)
    return out


def phase_report(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {}
    for phase in ("prepare", "fast", "captures", "memory", "realtime"):
        f = LIVE / f"{phase}.json"
        if f.exists():
            report[phase] = json.loads(f.read_text())
    if "prepare" in report:
        report["prepare"].get("catalog", {}).pop("sources", None)
    for cond in ("clean", "room", "talk"):
        (report.get("fast") or {}).get(cond, {}).pop("events", None)
    report["targets"] = targets(report)
    md = render(report)
    (LIVE.parent / f"{LIVE.name}.md").write_text(md + "\n")
    (LIVE.parent / f"{LIVE.name}.json").write_text(json.dumps(report, indent=1, default=str))
    print(md)
    return report


def _linked_run_dir(hour: Path, name: str) -> Path:
    """A results folder beside the hour's, with its playlist and audio linked in."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise SystemExit(f"--run-name takes letters, digits, '-' and '_', not {name!r}")
    if not (hour / "playlist.json").exists():
        raise SystemExit(f"{hour} has no playlist: run the prepare phase without --run-name first")
    run = hour.parent / f"{hour.name}-{name}"
    run.mkdir(parents=True, exist_ok=True)
    for f in [hour / "playlist.json", *hour.glob("hour-*.wav")]:
        link = run / f.name
        if not link.exists():
            link.symlink_to(f.resolve())
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--phases", default=",".join(PHASES), help="comma-separated: " + ",".join(PHASES))
    ap.add_argument("--seed", type=int, default=1, help="the known/unknown split (as bench_recognition; with "
                    "--music unseen, bench_unseen's own) and the playlist")
    ap.add_argument("--playlist-seed", type=int, help="another hour from the same catalog and split: "
                    "its playlist and room (default: --seed); kept apart in bench-out/live-p<N>")
    ap.add_argument("--hour-s", type=float, default=3600.0, help="length of the playlist, seconds")
    ap.add_argument("--unknown-songs", type=int, default=3)
    ap.add_argument("--silences", type=int, default=4)
    ap.add_argument("--music", choices=("benchmark", "unseen"), default="benchmark",
                    help="unseen: the hour from bench_unseen.py's hold-out packages (never tuned on), "
                    "in bench-out/live-unseen, against its catalog (bench-out/catalog-unseen)")
    ap.add_argument("--catalog", type=Path, help="default: bench-out/catalog-10h (catalog-unseen with --music unseen)")
    ap.add_argument("--conditions", default="clean,room,talk")
    ap.add_argument("--realtime-minutes", type=float, default=60.0)
    ap.add_argument("--health-interval", type=float, default=10.0)
    ap.add_argument("--captures", type=int, default=8, help="capture offsets in the captures phase")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="captures fed at once (processes)")
    ap.add_argument("--tail-s", type=float, default=20.0, help="listening after the playback ends")
    ap.add_argument("--profile", action="store_true", help="cProfile the full-speed runs (bench-out/live/profile-*.txt)")
    ap.add_argument("--no-plain-check", dest="plain_check", action="store_false",
                    help="skip the clean run without stage timers")
    ap.add_argument("--listen", action="append", default=[], metavar="KEY=VALUE",
                    help="a [listen] setting for every run, e.g. time_tolerance=1 (passed on as "
                    "EARSHOT_LISTEN__KEY, so the daemon's runs take it too); repeatable")
    ap.add_argument("--run-name", help="keep this run's results apart, in bench-out/<hour's folder>-<NAME> "
                    "(the hour's playlist and audio are linked from the hour's folder, which must be "
                    "prepared): settings compared side by side, or at once")
    ap.add_argument("--memrun", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for setting in args.listen:
        key, eq, value = setting.partition("=")
        if not eq or not key:
            ap.error(f"--listen takes KEY=VALUE, not {setting!r}")
        os.environ[f"EARSHOT_LISTEN__{key.strip().upper()}"] = value.strip()
    global LIVE
    if args.catalog is None:
        args.catalog = OUT / ("catalog-unseen" if args.music == "unseen" else "catalog-10h")
    args.catalog = args.catalog.resolve()
    if args.music == "unseen":
        LIVE = OUT / "live-unseen"
    if args.playlist_seed is None:
        args.playlist_seed = args.seed
    elif args.playlist_seed != args.seed:
        LIVE = LIVE.parent / f"{LIVE.name}-p{args.playlist_seed}"
    if args.run_name:
        LIVE = _linked_run_dir(LIVE, args.run_name)
    if args.memrun:
        memrun(args.memrun, args.catalog)
        return 0
    args.conditions = args.conditions.split(",")
    phases = args.phases.split(",")
    bad = [p for p in phases if p not in PHASES]
    if bad:
        ap.error(f"unknown phase(s) {bad}: choose from {PHASES}")
    LIVE.mkdir(parents=True, exist_ok=True)
    plan = phase_prepare(args) if "prepare" in phases else json.loads((LIVE / "playlist.json").read_text())
    (LIVE / "prepare.json").write_text(json.dumps(plan, indent=1))
    for phase, fn in (("realtime", phase_realtime), ("fast", phase_fast), ("captures", phase_captures),
                      ("memory", phase_memory)):
        if phase in phases:
            t0, code = time.perf_counter(), code_version()
            result = fn(args, plan)
            result["code"] = code
            result["listen_settings"] = args.listen
            result["phase_wall_s"] = time.perf_counter() - t0
            (LIVE / f"{phase}.json").write_text(json.dumps(result, indent=1, default=str))
    if "report" in phases:
        phase_report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
