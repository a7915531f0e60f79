"""Turn a pytest-benchmark JSON of ``benchmarks/`` into the results table (Markdown).

Usage::

    python -m pytest benchmarks --benchmark-only          # writes .benchmarks/latest.json
    python -m opensim_surrogate.bench_report benchmarks/RESULTS.md [--json FILE]
                                                         [--readme README.md]

Prints the table and writes it to the given Markdown file. With ``--readme``, the text between
``<!-- bench-results:start -->`` and ``<!-- bench-results:end -->`` in that file is replaced by
the table (nothing else is touched; without the markers the file is left alone).

Per gait cycle (see ``benchmarks/conftest.py``): a cycle is ``frames_per_cycle`` frames at
100 Hz. OpenSim ID and the warm surrogate are timed on exactly one cycle (when the trial has a
complete one); OpenSim SO is timed on a 2-frame and a W-frame window and extrapolated:
``T_2 + (T_W - T_2) / (W - 2) * (frames_per_cycle - 2)``. Times are medians over rounds.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_JSON = Path(".benchmarks") / "latest.json"
MARK_START = "<!-- bench-results:start -->"
MARK_END = "<!-- bench-results:end -->"

#: The issue's targets.
TARGET_SPEEDUP = 5000.0
TARGET_BATCH_CYCLES_S = 1000.0
TARGET_COLD_S = 2.0
TARGET_MEMORY_MB = 500.0


@dataclass
class BenchSummary:
    """Numbers derived from one benchmark run (seconds per gait cycle unless stated)."""

    frames_per_cycle: int
    id_cycle: float = float("nan")
    so_cycle: float = float("nan")
    so_per_frame: float = float("nan")
    so_fixed: float = float("nan")
    warm: dict[str, float] = field(default_factory=dict)        # variant -> s per cycle
    warm_call: dict[str, float] = field(default_factory=dict)   # variant -> s per call
    batch: dict[str, float] = field(default_factory=dict)       # runtime -> s per batch
    batch_cycles: float = float("nan")
    batch_trials: int = 0
    cold_wall: float = float("nan")
    cold_in_process: float = float("nan")
    cold_parts: dict[str, float] = field(default_factory=dict)
    cold_modules: dict[str, bool] = field(default_factory=dict)
    memory_mb: float = float("nan")
    batch_memory_mb: float = float("nan")
    onnx_cold_wall: float = float("nan")
    onnx_cold_in_process: float = float("nan")
    onnx_memory_mb: float = float("nan")
    onnx_modules: dict[str, bool] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def opensim_cycle(self) -> float:
        return self.id_cycle + self.so_cycle

    @property
    def best_batch(self) -> tuple[str, float]:
        """Runtime with the highest batched throughput, and its seconds per batch."""
        ok = {k: v for k, v in self.batch.items() if math.isfinite(v) and v > 0}
        if not ok:
            return "", float("nan")
        k = min(ok, key=ok.get)
        return k, ok[k]

    @property
    def batch_s(self) -> float:
        return self.best_batch[1]

    @property
    def best_single(self) -> tuple[str, float]:
        """Fastest single-thread warm variant (the runtime to pick)."""
        single = {k: v for k, v in self.warm.items() if "1thread" in k and math.isfinite(v)}
        if not single:
            return "", float("nan")
        k = min(single, key=single.get)
        return k, single[k]


def _median(b: dict[str, Any]) -> float:
    return float(b["stats"]["median"])


def summarize(data: dict[str, Any]) -> BenchSummary:
    """Derive the per-cycle numbers from a pytest-benchmark JSON document."""
    benches = data.get("benchmarks", [])
    if not benches:
        raise ValueError("no benchmarks in the JSON")
    info0 = benches[0].get("extra_info", {})
    fpc = int(info0.get("frames_per_cycle", 110))
    s = BenchSummary(frames_per_cycle=fpc)
    s.context = {k: info0.get(k) for k in ("trial_id", "frames_run", "cycle_source", "bundle",
                                           "coordinates_source", "smoke", "cpu_count")}
    s.context["datetime"] = data.get("datetime")
    mi = data.get("machine_info", {})
    s.context["cpu"] = (mi.get("cpu", {}) or {}).get("brand_raw", mi.get("processor", ""))
    s.context["python"] = mi.get("python_version")
    so: dict[str, tuple[float, int]] = {}
    for b in benches:
        x = b.get("extra_info", {})
        kind = x.get("kind", "")
        t = _median(b)
        frames = int(x.get("frames", 0) or 0)
        if kind == "opensim_id":
            s.id_cycle = t * max(1.0, fpc / max(frames, 1))
            if frames < fpc:
                s.notes.append(f"ID ran on {frames} frames; scaled ×{fpc / frames:.2f} to a "
                               f"{fpc}-frame cycle (over-estimates its fixed cost)")
        elif kind.startswith("opensim_so_"):
            so[kind] = (t, frames)
        elif kind == "surrogate_warm":
            v = str(x.get("variant", "eager-1thread"))
            s.warm_call[v] = t
            s.warm[v] = t * fpc / max(frames, 1) if frames < fpc else t
        elif kind == "surrogate_batch":
            s.batch[str(x.get("variant", x.get("runtime", "eager-2threads")))] = t
            s.batch_cycles = float(x.get("frames", 0)) / fpc
            s.batch_trials = int(x.get("n_trials", 0))
        elif kind == "surrogate_cold_start":
            s.cold_wall = t
            ips = x.get("in_process_s") or []
            s.cold_in_process = float(sorted(ips)[len(ips) // 2]) if ips else float("nan")
            s.cold_parts = {k: float(x[k]) for k in ("import_s", "load_s", "predict_s") if k in x}
            s.cold_modules = dict(x.get("modules") or {})
            s.memory_mb = float(x.get("maxrss_mb", float("nan")))
        elif kind == "surrogate_cold_start_onnx":
            s.onnx_cold_wall = t
            ips = x.get("in_process_s") or []
            s.onnx_cold_in_process = float(sorted(ips)[len(ips) // 2]) if ips else float("nan")
            s.onnx_memory_mb = float(x.get("maxrss_mb", float("nan")))
            s.onnx_modules = dict(x.get("modules") or {})
        elif kind == "surrogate_batch_process":
            s.batch_memory_mb = float(x.get("maxrss_mb", float("nan")))
    if "opensim_so_short" in so and "opensim_so_long" in so:
        (t2, f2), (tw, fw) = so["opensim_so_short"], so["opensim_so_long"]
        per = (tw - t2) / max(fw - f2, 1)
        if per <= 0:
            s.notes.append("SO long window was not slower than the short one (noise); the "
                           "per-frame cost is taken as T_W / W")
            per = tw / max(fw, 1)
            t2 = per * f2
        s.so_per_frame = per
        s.so_fixed = t2 - per * f2
        s.so_cycle = t2 + per * (fpc - f2)
    return s


def _fmt_s(x: float) -> str:
    if not math.isfinite(x):
        return "–"
    if x >= 1:
        return f"{x:.2f} s"
    if x >= 1e-3:
        return f"{x * 1e3:.2f} ms"
    return f"{x * 1e6:.1f} µs"


def _fmt(x: float, digits: int = 3) -> str:
    if not math.isfinite(x):
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _met(ok: bool | None) -> str:
    return "–" if ok is None else ("**met**" if ok else "**not met**")


def render(s: BenchSummary, command: str = "") -> str:
    """The Markdown results (table + targets + context)."""
    fpc = s.frames_per_cycle
    os_cycle = s.opensim_cycle
    lines = [f"Benchmark trial `{s.context.get('trial_id')}` ({s.context.get('coordinates_source')}); "
             f"one gait cycle = {fpc} frames at 100 Hz ({s.context.get('cycle_source')}). "
             f"Bundle `{s.context.get('bundle')}`. Machine: {s.context.get('cpu')}, "
             f"{s.context.get('cpu_count')} cores, Python {s.context.get('python')}; "
             f"run {s.context.get('datetime')}"
             + (" — **smoke run (1 round, tiny windows): not a measurement**" if
                s.context.get("smoke") else "") + ".", ""]
    lines += ["| step | time per gait cycle | throughput (cycles/s) | speed-up vs OpenSim ID+SO |",
              "|---|---|---|---|"]

    def row(name: str, t: float, note: str = "", speedup: bool = True) -> None:
        thr = 1.0 / t if t and math.isfinite(t) and t > 0 else float("nan")
        sp = os_cycle / t if t and math.isfinite(t) and t > 0 else float("nan")
        lines.append(f"| {name}{note} | {_fmt_s(t)} | {_fmt(thr)} | "
                     f"{_fmt(sp) + '×' if speedup else ''} |")

    row("OpenSim inverse dynamics", s.id_cycle, speedup=False)
    row("OpenSim static optimization", s.so_cycle,
        f" (extrapolated: {_fmt_s(s.so_fixed)} fixed + {_fmt_s(s.so_per_frame)}/frame)",
        speedup=False)
    row("**OpenSim ID + SO**", os_cycle, speedup=False)
    for v in sorted(s.warm):
        row(f"surrogate warm, {v}", s.warm[v])
    for v in sorted(s.batch):
        row(f"surrogate batch of {s.batch_trials} trials, {v}", s.batch[v] / s.batch_cycles,
            f" ({_fmt(s.batch_cycles)} cycles in {_fmt_s(s.batch[v])})")
    if math.isfinite(s.cold_wall):
        row("surrogate cold start (fresh process, import → first result)", s.cold_wall)
    if math.isfinite(s.onnx_cold_wall):
        row("prototype: cold start with ONNX Runtime, no torch (not in the package)",
            s.onnx_cold_wall)
    lines.append("")
    best_name, best = s.best_single
    speedup = os_cycle / best if math.isfinite(best) and best > 0 else float("nan")
    thr = s.batch_cycles / s.batch_s if math.isfinite(s.batch_s) and s.batch_s > 0 else float("nan")
    lines += ["| target | measured | status |", "|---|---|---|",
              f"| warm single-thread ≥ {TARGET_SPEEDUP:,.0f}× faster than OpenSim ID+SO per cycle "
              f"| {_fmt(speedup)}× ({best_name}) | "
              f"{_met(speedup >= TARGET_SPEEDUP if math.isfinite(speedup) else None)} |",
              f"| batched ≥ {TARGET_BATCH_CYCLES_S:,.0f} gait cycles/s on 2 cores | {_fmt(thr)} "
              f"cycles/s ({s.best_batch[0]}) | "
              f"{_met(thr >= TARGET_BATCH_CYCLES_S if math.isfinite(thr) else None)} |",
              f"| cold start ≤ {TARGET_COLD_S:g} s | {_fmt_s(s.cold_wall)} wall "
              f"({_fmt_s(s.cold_in_process)} after interpreter start) | "
              f"{_met(s.cold_wall <= TARGET_COLD_S if math.isfinite(s.cold_wall) else None)} |",
              f"| peak memory ≤ {TARGET_MEMORY_MB:g} MB, one trial (fresh process, peak RSS) | "
              f"{_fmt(s.memory_mb)} MB | "
              f"{_met(s.memory_mb <= TARGET_MEMORY_MB if math.isfinite(s.memory_mb) else None)} |",
              f"| peak memory ≤ {TARGET_MEMORY_MB:g} MB, batch of {s.batch_trials or 100} trials "
              f"in one call | {_fmt(s.batch_memory_mb)} MB | "
              f"{_met(s.batch_memory_mb <= TARGET_MEMORY_MB if math.isfinite(s.batch_memory_mb) else None)} |",
              ""]
    if s.cold_parts:
        mods = ", ".join(k for k, v in s.cold_modules.items() if v)
        lines.append("Cold start breakdown (best round): "
                     + ", ".join(f"{k[:-2]} {_fmt_s(v)}" for k, v in s.cold_parts.items())
                     + (f"; heavy modules loaded: {mods}" if mods else "") + ".")
    if math.isfinite(s.onnx_cold_wall):
        lines.append(f"Prototype torch-free cold start (ONNX Runtime + the package's feature "
                     f"code): {_fmt_s(s.onnx_cold_wall)} wall "
                     f"({_fmt_s(s.onnx_cold_in_process)} after interpreter start), peak "
                     f"{_fmt(s.onnx_memory_mb)} MB"
                     + ("; scipy is imported (Savitzky–Golay derivatives)" if
                        s.onnx_modules.get("scipy") else "") + ".")
    if best_name:
        lines.append(f"Fastest single-thread runtime: **{best_name}**; fastest batched: "
                     f"**{s.best_batch[0] or '–'}**.")
    for n in s.notes:
        lines.append(f"Note: {n}.")
    if command:
        lines += ["", f"Produced by: `{command}`"]
    return "\n".join(lines) + "\n"


def replace_between_markers(text: str, block: str) -> str | None:
    """``text`` with the part between the bench-results markers replaced (None: no markers)."""
    i, j = text.find(MARK_START), text.find(MARK_END)
    if i < 0 or j < i:
        return None
    return text[: i + len(MARK_START)] + "\n" + block + text[j:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m opensim_surrogate.bench_report",
                                description="Write the benchmark results table.")
    p.add_argument("out", type=Path, help="Markdown file to write (e.g. benchmarks/RESULTS.md)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON,
                   help=f"pytest-benchmark JSON (default {DEFAULT_JSON})")
    p.add_argument("--readme", type=Path, default=None,
                   help="also replace the marked results section of this file")
    p.add_argument("--command", default="make bench",
                   help="command line recorded as the producer of the table")
    args = p.parse_args(argv)
    if not args.json.is_file():
        sys.stderr.write(f"bench_report: {args.json}: no benchmark JSON — run "
                         "`python -m pytest benchmarks --benchmark-only` first\n")
        return 2
    try:
        data = json.loads(args.json.read_text())
        s = summarize(data)
    except (ValueError, KeyError) as exc:
        sys.stderr.write(f"bench_report: {args.json}: {exc}\n")
        return 2
    body = render(s, args.command)
    text = "# Benchmark results\n\n" + body
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(body)
    if args.readme is not None and args.readme.is_file():
        new = replace_between_markers(args.readme.read_text(encoding="utf-8"), body)
        if new is None:
            sys.stderr.write(f"bench_report: no {MARK_START} markers in {args.readme}; "
                             "left unchanged\n")
        else:
            args.readme.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
