"""Pictures for people: why `identify` matched (or not), and `analyze`'s report as one page.

Drawn on a bare matplotlib Figure with the Agg renderer: no pyplot, no display, no global
state, so it runs the same on a headless Pi. matplotlib is an optional extra
(`pip install 'earshot[plot]'`) imported only here, only when a picture is asked for.

Every artist that stands for a reported number carries a gid ("integrated", "band:mid",
"offsets:best", ...), so a test can read back what was drawn and compare it with the JSON.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import EarshotError, UsageError
from .report import (
    BROADCAST_TARGET_LUFS,
    BROADCAST_TOLERANCE_LU,
    STREAMING_TARGET_LUFS,
    STREAMING_TOLERANCE_LU,
    TRUE_PEAK_CEILING_DBTP,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .explain import Explanation, OffsetHistogram

FIG_SIZE_IN = (12.0, 7.0)   # at DPI: 1200 × 700 pixels
DPI = 100
FORMATS = (".png", ".svg", ".pdf")
INSTALL_HINT = "pip install 'earshot[plot]'"
MAX_LINE_POINTS = 4000      # loudness curves longer than this are reduced to block maxima

STATUS_COLOURS = {"within": "#4c9a5f", "above": "#d1603d", "below": "#3d7dd1", None: "#999999"}


# -- checks and files ----------------------------------------------------------------------
def check_plot_target(path: str | Path) -> Path:
    """The picture path, once matplotlib is known to be there and the path is writable-looking
    (UsageError otherwise, before any work is done)."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise UsageError(f"--plot {path}: the picture must end in {', '.join(FORMATS)}")
    if not path.parent.is_dir():
        raise UsageError(f"--plot {path}: the folder {path.parent} does not exist")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    return path


def numbered_paths(path: Path, count: int) -> list[Path]:
    """One picture per input: `out.png` for one, `out-1.png`, `out-2.png`… for several
    (numbered in the order the inputs are taken)."""
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1)]


def save_figure(fig: Figure, path: Path) -> None:
    """Render with Agg (or the vector backends for .svg/.pdf) and write the file."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    try:
        fig.savefig(path, dpi=DPI)
    except OSError as exc:
        raise EarshotError(f"cannot write the picture {path}: {exc.strerror or exc}") from None


def _figure() -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=FIG_SIZE_IN, dpi=DPI, layout="constrained")


def _position(seconds: float) -> str:
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    return f"{sign}{int(seconds // 60)}:{seconds % 60:04.1f}"


def _track_name(track: Any) -> str:
    return f"{track.title}" + (f" — {track.artist}" if track.artist else "")


# -- identify --------------------------------------------------------------------------------
def identify_figure(expl: Explanation, name: str) -> Figure:
    """The query as the fingerprint sees it, the hashes that matched, and the evidence of
    the best track beside the runner-up's."""
    fig = _figure()
    axes = fig.subplot_mosaic([["spec", "best"], ["spec", "runner_up"]], width_ratios=[1.5, 1])
    _draw_spectrogram(axes["spec"], expl)
    top = max([h.score for h in (expl.best, expl.runner_up) if h is not None] + [1])
    _draw_offsets(axes["best"], expl.best, "best", top, expl.match is not None)
    _draw_offsets(axes["runner_up"], expl.runner_up, "runner-up", top, False)
    fig.suptitle(f"{name} → {_identify_verdict(expl)}", fontsize=13)
    return fig


def _identify_verdict(expl: Explanation) -> str:
    # an unsure candidate's band levels at its place (identify.py): what confirmed it, or not
    lc = expl.level_check
    levels = "" if lc is None else f", band levels {lc.z:.1f} σ above random places"
    if expl.match is not None:
        m = expl.match
        speed = f", playing {100 * (m.speed - 1):+.1f}% fast" if m.speed != 1.0 else ""
        return (f"{_track_name(m.track)} at {_position(m.offset_s)} "
                f"(confidence {m.confidence:.3f}{speed}{levels})")
    if expl.candidate is not None:
        c = expl.candidate
        return f"no match (best candidate {_track_name(c.track)}, confidence {c.confidence:.3f}{levels})"
    return "no match (none of its hashes is in the catalog)"


def _draw_spectrogram(ax: Axes, expl: Explanation) -> None:
    from matplotlib.collections import LineCollection

    spec = expl.spectrogram_db
    fs, df = expl.frame_s, float(expl.freqs_hz[1] - expl.freqs_hz[0])
    top = float(spec.max()) if spec.size else 0.0
    if spec.size:
        ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=top - 70, vmax=top,
                  extent=(-fs / 2, (spec.shape[1] - 0.5) * fs, -df / 2, expl.freqs_hz[-1] + df / 2),
                  interpolation="nearest", gid="spectrogram")
    ax.set_xlim(0, max(expl.duration_s, fs))
    ax.set_ylim(0, float(expl.freqs_hz[-1]))
    for f in expl.band_hz:
        ax.axhline(f, color="#8ab4f8", lw=0.8, ls=":", alpha=0.8)
    ax.scatter(expl.peak_s, expl.peak_hz, s=7, c="white", alpha=0.55, linewidths=0,
               label=f"spectral peaks ({len(expl.peak_s)})", gid="peaks")
    pairs = expl.pairs
    if len(pairs):
        segs = np.stack([np.column_stack([pairs.anchor_s, pairs.anchor_hz]),
                         np.column_stack([pairs.target_s, pairs.target_hz])], axis=1)
        ax.add_collection(LineCollection(list(segs), colors="#00e5ff", linewidths=0.8,
                                         alpha=0.8 if len(pairs) < 150 else 0.6, gid="pairs"))
        ax.scatter(pairs.anchor_s, pairs.anchor_hz, s=22, c="#00e5ff", edgecolors="black",
                   linewidths=0.4, label=f"matching hashes: anchor → target ({len(pairs)})",
                   gid="anchors", zorder=3)
    ax.set_xlabel("time in the query (s)")
    ax.set_ylabel("frequency (Hz)")
    ax.set_title(f"the fingerprint's view: {expl.freqs_hz[-1] * 2 / 1000:g} kHz spectrogram, "
                 f"peaks searched in {expl.band_hz[0]:g}–{expl.band_hz[1]:g} Hz", fontsize=10)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)


def _draw_offsets(ax: Axes, hist: OffsetHistogram | None, role: str, top: int, matched: bool) -> None:
    if hist is None:
        ax.set_title(f"{role}: none", fontsize=10)
        ax.text(0.5, 0.5, "no other track shares a hash with this audio" if role != "best"
                else "no evidence", ha="center", va="center", transform=ax.transAxes, color="#666")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    colour = "#1f77b4" if role == "best" else "#7f7f7f"
    if role == "best" and not matched:
        colour = "#c07a1f"
    x = hist.offsets_s
    ax.fill_between(x, hist.cell_counts, step="post", color=colour, alpha=0.35, lw=0)
    ax.step(x, hist.cell_counts, where="post", color=colour, lw=0.9, gid=f"offsets:{role.replace('-', '_')}")
    ax.axvline(hist.offset_s, color=colour, ls="--", lw=0.8, gid=f"offset:{role.replace('-', '_')}")
    lo = min(float(x[0]), 0.0)
    hi = max(float(x[-1]) + hist.step_s, hist.track.duration_s)
    word = "hash agrees" if hist.score == 1 else "hashes agree"
    left = hist.offset_s > (lo + hi) / 2  # the label on the side with room
    ax.annotate(f"{hist.score} {word} at {_position(hist.offset_s)}", (hist.offset_s, hist.score),
                xytext=(-6 if left else 6, 3), textcoords="offset points", fontsize=9,
                va="bottom", ha="right" if left else "left")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, top * 1.15 + 1)
    ax.set_title(f"{role}: {_track_name(hist.track)} [track #{hist.track.track_id}]", fontsize=10)
    ax.set_xlabel("offset into the track (s)")
    ax.set_ylabel(f"hashes per {hist.step_s * 4 * 1000:.0f} ms cell")


# -- analyze ---------------------------------------------------------------------------------
def analysis_figure(res: dict[str, Any]) -> Figure:
    """`analyze`'s result (with its series) as one page: loudness over time against the
    delivery references, true peak against the ceiling, the six bands against the genre."""
    fig = _figure()
    axes = fig.subplot_mosaic([["loud", "loud"], ["peak", "bands"]], width_ratios=[1, 3],
                              height_ratios=[1.25, 1])
    _draw_loudness(axes["loud"], res)
    _draw_peaks(axes["peak"], res)
    _draw_bands(axes["bands"], res)
    d = res["duration_s"]
    fig.suptitle(f"{Path(res['file']).name}  ({_position(d)}, {res['sample_rate'] / 1000:g} kHz, "
                 f"{res['channels']} ch)", fontsize=13)
    # supxlabel, not fig.text: the constrained layout makes room for it
    fig.supxlabel(textwrap.fill(f"{res['verdict']['summary']} ({res['verdict']['disclaimer']})", 150),
                  fontsize=9, color="#333")
    return fig


def _series(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _reduce(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most about MAX_LINE_POINTS points: the loudest value of each block (peaks stay)."""
    k = math.ceil(len(y) / MAX_LINE_POINTS)
    if k <= 1:
        return x, y
    n = len(y) // k * k
    blocks = y[:n].reshape(-1, k)
    finite = np.isfinite(blocks).any(axis=1)
    peak = np.full(len(blocks), np.nan)
    peak[finite] = np.nanmax(blocks[finite], axis=1)
    return x[k - 1:n:k], peak


def _hz_range(low: float, high: float) -> str:
    if low >= 1000:
        return f"{low / 1000:g}–{high / 1000:g} kHz"
    return f"{low:g}–{high:g} Hz" if high < 1000 else f"{low:g} Hz–{high / 1000:g} kHz"


def _draw_loudness(ax: Axes, res: dict[str, Any]) -> None:
    series = res.get("series") or {"step_s": 0.01, "momentary_lufs": [], "short_term_lufs": []}
    step = float(series["step_s"])
    mom, sht = _series(series["momentary_lufs"]), _series(series["short_term_lufs"])
    t = (np.arange(len(mom)) + 1) * step  # each value is the window ending there
    ax.plot(*_reduce(t, mom), color="#9ecae1", lw=0.7, label="momentary (400 ms)", gid="momentary")
    ax.plot(*_reduce(t, sht), color="#08519c", lw=1.4, label="short-term (3 s)", gid="short_term")
    ax.axhspan(STREAMING_TARGET_LUFS - STREAMING_TOLERANCE_LU, STREAMING_TARGET_LUFS + STREAMING_TOLERANCE_LU,
               color="#4c9a5f", alpha=0.18, lw=0, label=f"{STREAMING_TARGET_LUFS:g} LUFS streaming reference")
    ax.axhspan(BROADCAST_TARGET_LUFS - BROADCAST_TOLERANCE_LU, BROADCAST_TARGET_LUFS + BROADCAST_TOLERANCE_LU,
               color="#8c6bb1", alpha=0.18, lw=0, label=f"{BROADCAST_TARGET_LUFS:g} LUFS broadcast (EBU R128)")
    integrated = res.get("integrated_lufs")
    if integrated is not None:
        ax.axhline(integrated, color="#d1603d", lw=1.6, ls="--", gid="integrated",
                   label=f"integrated {integrated:.1f} LUFS")
    finite = mom[np.isfinite(mom)]
    low = float(np.percentile(finite, 2)) if finite.size else -40.0
    high = float(finite.max()) if finite.size else -10.0
    ax.set_ylim(max(-70.0, min(low, BROADCAST_TARGET_LUFS - 5) - 3), max(high, STREAMING_TARGET_LUFS) + 3)
    ax.set_xlim(0, max(res["duration_s"], step))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("loudness (LUFS)")
    lra = res.get("loudness_range_lu")
    ax.set_title("loudness over time" + (f" · loudness range {lra:.1f} LU" if lra is not None else "")
                 + ("" if integrated is not None else " · no integrated loudness (silent or too short)"),
                 fontsize=10)
    ax.legend(loc="lower right", fontsize=8, ncol=3, framealpha=0.85)


def _draw_peaks(ax: Axes, res: dict[str, Any]) -> None:
    values = [("true peak", res.get("true_peak_dbtp"), "true_peak", "dBTP"),
              ("sample peak", res.get("sample_peak_dbfs"), "sample_peak", "dBFS")]
    floor = min([-30.0] + [v - 6 for _, v, _, _ in values if v is not None])
    for i, (label, v, gid, unit) in enumerate(values):
        if v is None:
            ax.text(i, floor + 1, "—", ha="center", va="bottom")
            continue
        over = v > TRUE_PEAK_CEILING_DBTP
        ax.bar(i, v - floor, bottom=floor, width=0.6, color="#d1603d" if over else "#4c9a5f",
               gid=gid)
        inside = v - floor > 4  # the value on the bar's top, inside when there is room
        ax.text(i, v - 0.5 if inside else v + 0.5, f"{v:+.1f} {unit}", ha="center",
                va="top" if inside else "bottom", fontsize=9, color="white" if inside else "black")
    ax.axhline(TRUE_PEAK_CEILING_DBTP, color="#b22222", ls="--", lw=1.2, gid="ceiling",
               label=f"{TRUE_PEAK_CEILING_DBTP:g} dBTP ceiling")
    top = max([TRUE_PEAK_CEILING_DBTP] + [v for _, v, _, _ in values if v is not None])
    ax.set_ylim(floor, top + 4)
    ax.set_xlim(-0.6, 1.6)
    ax.set_xticks([0, 1], [label for label, _, _, _ in values])
    ax.set_ylabel("level (dB re full scale)")
    ax.set_title("peaks against the delivery ceiling", fontsize=10)
    ax.legend(loc="lower center", fontsize=8, framealpha=0.85)


def _draw_bands(ax: Axes, res: dict[str, Any]) -> None:
    bands = res["bands"]
    levels = [b["level_db"] for b in bands.values() if b["level_db"] is not None]
    lows = [b["typical_db"][0] for b in bands.values()]
    floor = math.floor(min(lows + levels + [-40.0]) / 5) * 5 - 5
    for i, (name, b) in enumerate(bands.items()):
        low, high = b["typical_db"]
        ax.bar(i, high - low, bottom=low, width=0.75, color="#cccccc", alpha=0.55,
               edgecolor="#888888", lw=0.8, gid=f"range:{name}",
               label=f"typical {res['verdict']['genre']} range" if i == 0 else None)
        level = b["level_db"]
        if level is None:
            ax.text(i, floor + 1, "—", ha="center", va="bottom")
            continue
        ax.bar(i, level - floor, bottom=floor, width=0.35, color=STATUS_COLOURS[b["status"]],
               alpha=0.9, gid=f"band:{name}")
        ax.text(i, level + 0.5, f"{level:+.1f}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(bands)), [f"{n.replace('_', '-')}\n{_hz_range(b['low_hz'], b['high_hz'])}"
                                      for n, b in bands.items()], fontsize=9)
    ax.set_ylim(floor, 3)
    ax.set_ylabel("band level (dB of the total)")
    ax.set_title("six bands against the genre's typical range "
                 "(green within, red above, blue below)", fontsize=10)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85)
