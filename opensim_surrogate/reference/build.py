"""Resumable, parallel dataset builder: a corpus manifest -> a dataset directory.

:func:`build_dataset` runs the reference pipeline (:func:`~.pipeline.process_trial`) on every
trial of a corpus and stores each result with :func:`~opensim_surrogate.dataset.store.write_trial`.

* **Resumable.** A trial already complete in ``out`` (``store.is_complete``) is skipped. Each
  trial is written atomically by the process that computed it, so killing a build loses at
  most the trials in flight; rerunning the same command finishes the rest.
* **Failures do not stop the build.** A trial that raises is recorded under
  ``out/failures/<trial_id>.json`` (error, step, traceback) and retried by the next run; a
  later success removes the record.
* **Parallel.** Locally, every trial runs in a fresh *spawned* worker process (a single-use
  ``concurrent.futures.ProcessPoolExecutor``), at most ``jobs`` at a time: OpenSim state never
  leaks from one trial into the next and a crash (segfault, out of memory) is attributed to
  exactly the trial that caused it. With ``scheduler`` the trials go to a Dask distributed
  cluster instead (``out`` must then be on a file system the workers share).
* ``out/dataset.json`` is written at the start (``status: "building"``) and rewritten at the
  end with the trial list, failures and a :class:`BuildSummary`; ``out/build.log`` keeps a
  line per trial; ``out/work/<trial_id>/`` keeps the OpenSim files and ``trial.log`` of each
  trial for inspection, ``out/work/models/`` the scaled subject models shared by a subject's
  trials.

The "folder" corpus (labels already computed by a lab) is read in the calling process:
there is nothing to compute, only files to convert.
"""
from __future__ import annotations

import json
import logging
import math
import multiprocessing
import shutil
import sys
import time
import traceback
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from .._version import __version__
from ..dataset.store import (TrialRecord, is_complete, record_failure,
                             write_info, write_trial)
from ..errors import DatasetError, MissingFileError, SurrogateError
from .corpora import FolderTrial, check_spec, get_corpus, read_folder_trial
from .pipeline import TrialSpec

log = logging.getLogger(__name__)

__all__ = ["BuildSummary", "build_dataset", "run_trial", "STEPS"]

#: Pipeline steps whose seconds (``record.extras["seconds"]``) the summary reports first.
STEPS = ("scale", "ik", "id", "so")

ProcessFn = Callable[[TrialSpec, Any, Path], TrialRecord]
Item = TrialSpec | FolderTrial


# --------------------------------------------------------------------------------------
# summary


@dataclass
class BuildSummary:
    """What a build did (also stored under ``"summary"`` in ``dataset.json``).

    Attributes
    ----------
    corpus : str
        Corpus name (``schreiber2019``, ``hamner2013``, ``folder`` or ``custom``).
    out : str
        Dataset directory.
    trials : int
        Trials in the manifest (after ``limit``).
    done, skipped, failed : int
        Computed by this run / already complete before it / failed in this run.
    frames, frames_id_valid, frames_so_valid, frames_labelled : int
        Frames of all complete trials of the manifest: total, with valid ID labels, with
        valid SO labels, with both.
    seconds : dict
        Step -> ``{"sum": s, "mean": s, "trials": n}`` over complete trials, from
        ``record.extras["seconds"]`` (``scale``, ``ik``, ``id``, ``so``, ...).
    wall_s : float
        Wall-clock time of this run.
    failures : list of dict
        ``{"trial_id", "step", "error"}`` of every trial of the manifest not complete.
    """

    corpus: str
    out: str
    trials: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    frames: int = 0
    frames_id_valid: int = 0
    frames_so_valid: int = 0
    frames_labelled: int = 0
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    wall_s: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def complete(self) -> int:
        """Trials of the manifest now complete in the dataset."""
        return self.done + self.skipped

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def to_markdown(self) -> str:
        """A short Markdown report (printed by ``opensim-surrogate build-dataset``)."""
        pct = lambda k: f"{100.0 * k / self.frames:.1f} %" if self.frames else "-"  # noqa
        lines = [
            f"## Dataset build: {self.corpus} -> {self.out}", "",
            "| | |", "|---|---|",
            f"| trials | {self.trials}: {self.done} computed, {self.skipped} already done, "
            f"{self.failed} failed |",
            f"| frames | {self.frames} ({self.frames_id_valid} ID-labelled, "
            f"{pct(self.frames_id_valid)}; {self.frames_so_valid} SO-labelled, "
            f"{pct(self.frames_so_valid)}; {self.frames_labelled} both) |",
            f"| wall time | {self.wall_s:.1f} s |",
        ]
        if self.seconds:
            lines += ["", "| step | seconds (sum) | seconds (mean per trial) | trials |",
                      "|---|---:|---:|---:|"]
            for step, s in self.seconds.items():
                lines.append(f"| {step} | {s['sum']:.1f} | {s['mean']:.2f} | "
                             f"{int(s['trials'])} |")
        if self.failures:
            lines += ["", "| failed trial | step | error |", "|---|---|---|"]
            for f in self.failures:
                err = str(f.get("error", "")).splitlines()[0] if f.get("error") else ""
                err = err.replace("|", "\\|")
                if len(err) > 160:
                    err = err[:157] + "..."
                lines.append(f"| {f['trial_id']} | {f.get('step', '')} | {err} |")
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# one trial (runs in the worker)


def _default_process_fn() -> ProcessFn:
    from .pipeline import process_trial

    return process_trial


def _failure_step(exc: BaseException) -> str:
    step = getattr(exc, "step", None)
    if isinstance(step, str) and step:
        return step
    if isinstance(exc, MissingFileError):
        return "inputs"
    return "unknown"


def run_trial(item: Item, config: Any, out: str | Path, process_fn: ProcessFn | None = None,
              *, isolated: bool = True) -> dict[str, Any]:
    """Compute one trial and store it (or its failure) under ``out``; never raises.

    This is what each worker runs. It is public so that other schedulers can call it.

    Parameters
    ----------
    item
        A :class:`TrialSpec` (run through ``process_fn``) or a :class:`FolderTrial` (read).
    config
        Passed to ``process_fn`` unchanged (a :class:`ReferenceConfig` for the real one).
    out
        Dataset directory; the trial's work directory is ``out/work/<trial_id>``.
    process_fn
        ``process_fn(spec, config, workdir) -> TrialRecord``; default
        :func:`~opensim_surrogate.reference.pipeline.process_trial`.
    isolated
        True in a worker process: the package logger is set to INFO so that
        ``work/<trial_id>/trial.log`` gets every message.

    Returns
    -------
    dict
        ``{"trial_id", "status": "done"|"failed", "wall_s", ...}``; for done trials also
        ``frames``, ``id_valid``, ``so_valid``, ``seconds``; for failures ``step``, ``error``.
    """
    out = Path(out)
    tid = item.trial_id
    workdir = out / "work" / tid
    workdir.mkdir(parents=True, exist_ok=True)
    pkg_logger = logging.getLogger("opensim_surrogate")
    handler = logging.FileHandler(workdir / "trial.log", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    old_level = pkg_logger.level
    pkg_logger.addHandler(handler)
    if isolated:
        pkg_logger.setLevel(logging.INFO)
    t0 = time.perf_counter()
    stage = "inputs"
    try:
        log.info("trial %s: start (workdir %s)", tid, workdir)
        if isinstance(item, FolderTrial):
            stage = "read"
            record = read_folder_trial(item)
        else:
            check_spec(item)
            stage = "process"
            fn = process_fn if process_fn is not None else _default_process_fn()
            record = fn(item, config, workdir)
        stage = "write"
        if not isinstance(record, TrialRecord):
            raise DatasetError(f"trial {tid}: process function returned "
                               f"{type(record).__name__}, not a TrialRecord")
        if record.trial_id != tid:
            raise DatasetError(f"trial {tid}: process function returned a record for "
                               f"{record.trial_id!r}")
        write_trial(out, record)  # drops DataFrame.attrs (e.g. TableHeader) itself
        mask = record.mask
        idv = mask["id_valid"].to_numpy(bool) if "id_valid" in mask else None
        sov = mask["so_valid"].to_numpy(bool) if "so_valid" in mask else None
        wall = time.perf_counter() - t0
        log.info("trial %s: done in %.1f s (%d frames)", tid, wall, len(record.kinematics))
        return {"trial_id": tid, "status": "done", "wall_s": wall,
                "frames": int(len(record.kinematics)),
                "id_valid": int(idv.sum()) if idv is not None else 0,
                "so_valid": int(sov.sum()) if sov is not None else 0,
                "seconds": _seconds_of(record.extras)}
    except Exception as exc:  # a failing trial must not stop the build
        wall = time.perf_counter() - t0
        step = _failure_step(exc)
        if step == "unknown" and stage != "process":
            step = stage
        error = f"{type(exc).__name__}: {exc}"
        log.error("trial %s failed at step %s: %s", tid, step, error)
        try:
            record_failure(out, tid, error, step=step, error_type=type(exc).__name__,
                           traceback=traceback.format_exc(), wall_s=wall,
                           workdir=str(workdir), time=_now())
        except OSError as exc2:  # pragma: no cover - disk full etc.
            log.error("cannot record the failure of %s: %s", tid, exc2)
        return {"trial_id": tid, "status": "failed", "wall_s": wall, "step": step,
                "error": error}
    finally:
        pkg_logger.removeHandler(handler)
        handler.close()
        if isolated:
            pkg_logger.setLevel(old_level)


def _seconds_of(extras: dict[str, Any]) -> dict[str, float]:
    sec = extras.get("seconds") if isinstance(extras, dict) else None
    out = {}
    if isinstance(sec, dict):
        for k, v in sec.items():
            try:
                x = float(v)
            except (TypeError, ValueError):
                continue
            if math.isfinite(x):
                out[str(k)] = x
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------
# executors


def _crash_result(out: Path, item: Item, exc: BaseException, t0: float) -> dict[str, Any]:
    """The worker died (or could not be reached): record that in the main process."""
    tid = item.trial_id
    if isinstance(exc, BrokenProcessPool):
        error = ("worker process died abruptly (crash or kill: e.g. a segfault in OpenSim or "
                 "out of memory); see " + str(out / "work" / tid / "trial.log"))
        step = "worker"
    else:
        error = f"{type(exc).__name__}: {exc}"
        step = _failure_step(exc) if isinstance(exc, SurrogateError) else "worker"
    wall = time.monotonic() - t0
    record_failure(out, tid, error, step=step, error_type=type(exc).__name__,
                   traceback="".join(traceback.format_exception(exc)), wall_s=wall,
                   time=_now())
    return {"trial_id": tid, "status": "failed", "wall_s": wall, "step": step, "error": error}


def _run_inline(items: list[Item], config: Any, out: Path, process_fn: ProcessFn | None,
                on_result: Callable[[dict[str, Any]], None]) -> None:
    for item in items:
        on_result(run_trial(item, config, out, process_fn, isolated=False))


def _run_local(items: list[Item], config: Any, out: Path, process_fn: ProcessFn | None,
               jobs: int, on_result: Callable[[dict[str, Any]], None]) -> None:
    ctx = multiprocessing.get_context("spawn")
    pending = deque(items)
    running: dict[Future, tuple[Item, ProcessPoolExecutor, float]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                item = pending.popleft()
                ex = ProcessPoolExecutor(max_workers=1, mp_context=ctx)
                fut = ex.submit(run_trial, item, config, str(out), process_fn)
                running[fut] = (item, ex, time.monotonic())
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                item, ex, t0 = running.pop(fut)
                try:
                    res = fut.result()
                except BaseException as exc:  # noqa: BLE001 - worker death, pickling, ...
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    res = _crash_result(out, item, exc, t0)
                ex.shutdown(wait=True)
                on_result(res)
    finally:
        for item, ex, _ in running.values():
            ex.shutdown(wait=False, cancel_futures=True)


def _run_dask(items: list[Item], config: Any, out: Path, process_fn: ProcessFn | None,
              scheduler: Any, on_result: Callable[[dict[str, Any]], None]) -> None:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - dask is an optional extra
        raise DatasetError("a Dask scheduler was given but dask.distributed is not installed",
                           hint="pip install 'opensim-surrogate[cluster]'") from None
    own = not isinstance(scheduler, Client)
    if own:
        try:
            client = Client(scheduler)
        except (OSError, TimeoutError, ValueError) as exc:
            raise DatasetError(f"cannot connect to the Dask scheduler {scheduler!r}: {exc}",
                               hint="check --scheduler (e.g. tcp://host:8786)") from None
    else:
        client = scheduler
    try:
        futures = {}
        for item in items:
            key = f"build-dataset-{item.trial_id}-{uuid.uuid4().hex[:8]}"
            fut = client.submit(run_trial, item, config, str(out), process_fn, key=key,
                                pure=False)
            futures[fut] = (item, time.monotonic())
        for fut in as_completed(list(futures)):
            item, t0 = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # KilledWorker, CancelledError, ...
                res = _crash_result(out, item, exc, t0)
            on_result(res)
    finally:
        if own:
            client.close()


# --------------------------------------------------------------------------------------
# the build


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"opensim_surrogate": __version__,
                                  "python": sys.version.split()[0]}
    for dist in ("opensim", "numpy", "pandas", "pyarrow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _config_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    if isinstance(config, dict):
        return dict(config)
    raise DatasetError(f"config must be a ReferenceConfig or a dict, not "
                       f"{type(config).__name__}")


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


def _clean_stale(out: Path) -> None:
    """Remove half-written trial directories left by a killed build."""
    trials = out / "trials"
    if trials.is_dir():
        for p in trials.iterdir():
            if p.name.startswith(".") and p.is_dir():
                log.info("removing a half-written trial left by an interrupted build: %s", p)
                shutil.rmtree(p, ignore_errors=True)
    (out / "dataset.json.tmp").unlink(missing_ok=True)


def _trial_stats(out: Path, tid: str) -> tuple[int, int, int, int, dict[str, float]]:
    d = out / "trials" / tid
    try:
        meta = json.loads((d / "meta.json").read_text())
        mask = pd.read_parquet(d / "mask.parquet")
    except (OSError, ValueError) as exc:
        log.warning("cannot read the stats of trial %s: %s", tid, exc)
        return 0, 0, 0, 0, {}
    n = len(mask)
    idv = mask["id_valid"].to_numpy(bool) if "id_valid" in mask else None
    sov = mask["so_valid"].to_numpy(bool) if "so_valid" in mask else None
    both = int((idv & sov).sum()) if idv is not None and sov is not None else 0
    return (n, int(idv.sum()) if idv is not None else 0,
            int(sov.sum()) if sov is not None else 0, both,
            _seconds_of(meta.get("extras", {})))


def _summarise(summary: BuildSummary, out: Path, items: list[Item]) -> None:
    per_step: dict[str, list[float]] = {}
    for item in items:
        tid = item.trial_id
        if is_complete(out, tid):
            n, i, s, b, sec = _trial_stats(out, tid)
            summary.frames += n
            summary.frames_id_valid += i
            summary.frames_so_valid += s
            summary.frames_labelled += b
            for k, v in sec.items():
                per_step.setdefault(k, []).append(v)
        else:
            p = out / "failures" / f"{tid}.json"
            info: dict[str, Any] = {}
            if p.is_file():
                try:
                    info = json.loads(p.read_text())
                except ValueError:
                    info = {}
            summary.failures.append({"trial_id": tid, "step": info.get("step", "unknown"),
                                     "error": info.get("error", "not computed")})
    order = [s for s in STEPS if s in per_step] + sorted(set(per_step) - set(STEPS))
    summary.seconds = {k: {"sum": float(sum(per_step[k])),
                           "mean": float(sum(per_step[k]) / len(per_step[k])),
                           "trials": len(per_step[k])} for k in order}


def _check_existing(out: Path, corpus: str, config: dict[str, Any]) -> dict[str, Any]:
    p = out / "dataset.json"
    if not p.is_file():
        return {}
    try:
        info = json.loads(p.read_text())
    except ValueError as exc:
        raise DatasetError(f"unreadable dataset.json: {exc}", path=p,
                           hint="delete it (the trials are kept) and rerun") from None
    if info.get("corpus") not in (None, corpus):
        raise DatasetError(f"this dataset was built from corpus {info.get('corpus')!r}, "
                           f"not {corpus!r}", path=p,
                           hint="build each corpus into its own --out directory")
    if "config" in info and _jsonable(info["config"]) != _jsonable(config):
        old, new = info["config"] or {}, _jsonable(config)
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise DatasetError("this dataset was built with other reference settings "
                           f"(differing: {', '.join(diff) or '?'})", path=p,
                           hint="labels of one dataset must share one config: use a new "
                                "--out directory, or delete this one to rebuild")
    return info


def _resolve(corpus: Any, data_root: str | Path | None) -> tuple[str, str, list[Item]]:
    if isinstance(corpus, (str, Path)):
        name, items = get_corpus(corpus, data_root)
        source = str(Path(corpus).expanduser().resolve()) if name == "folder" else name
        return name, source, list(items)
    items = list(corpus)
    bad = [type(x).__name__ for x in items if not isinstance(x, (TrialSpec, FolderTrial))]
    if bad:
        raise DatasetError(f"corpus items must be TrialSpec or FolderTrial, not {bad[0]}")
    return "custom", "custom", items


def build_dataset(corpus: str | Path | Iterable[TrialSpec], out: str | Path, *,
                  config: Any = None, jobs: int = 1, scheduler: Any = None,
                  limit: int | None = None, progress: bool = True,
                  process_fn: ProcessFn | None = None,
                  data_root: str | Path | None = None) -> BuildSummary:
    """Build (or resume) a dataset from a corpus.

    Parameters
    ----------
    corpus
        ``"schreiber2019"``, ``"hamner2013"``, the path of a "folder" corpus (labels
        already computed, see ``docs/dataset.md``), or a manifest (list of TrialSpec).
    out
        Dataset directory (created; reused to resume).
    config
        :class:`~opensim_surrogate.reference.config.ReferenceConfig` (or its dict); default
        ``ReferenceConfig()``. A dataset keeps one config: resuming with another raises.
    jobs
        Local worker processes (each trial in a fresh spawned process). ``0`` runs the
        trials in the calling process (debugging; no crash isolation).
    scheduler
        Run on a Dask distributed cluster instead: a scheduler address
        (``"tcp://host:8786"``), a ``distributed.Client``, or a cluster object such as
        ``distributed.LocalCluster``. ``out`` must be on storage the workers share.
    limit
        Only the first ``limit`` trials of the manifest (sorted by trial id).
    progress
        Show a progress bar with ETA on stderr (tqdm).
    process_fn
        ``process_fn(spec, config, workdir) -> TrialRecord``; default the real
        :func:`~opensim_surrogate.reference.pipeline.process_trial`. Tests inject cheap
        fakes here. With ``jobs >= 1`` it must be a module-level (importable) function.
    data_root
        Shared data folder for the named corpora (default ``$OPENSIM_SURROGATE_DATA``).

    Returns
    -------
    BuildSummary

    Raises
    ------
    DatasetError
        Unknown corpus, bad arguments, or ``out`` holds a dataset of another corpus/config.
    MissingFileError
        The corpus folder (or a file every trial needs) is missing.
    """
    t_start = time.monotonic()
    if jobs is None or int(jobs) < 0:
        raise DatasetError(f"jobs must be >= 0, not {jobs!r}")
    jobs = int(jobs)
    if limit is not None and int(limit) < 0:
        raise DatasetError(f"limit must be >= 0, not {limit!r}")
    name, source, items = _resolve(corpus, data_root)
    items = sorted(items, key=lambda x: x.trial_id)
    seen: set[str] = set()
    for it in items:
        if it.trial_id in seen:
            raise DatasetError(f"trial id {it.trial_id!r} appears twice in the manifest")
        seen.add(it.trial_id)
    if limit is not None:
        items = items[: int(limit)]
    is_folder = bool(items) and all(isinstance(x, FolderTrial) for x in items)

    if is_folder:
        config = None
        config_d: dict[str, Any] = {"labels": "given (folder corpus, OpenSim not re-run)"}
    else:
        if process_fn is None:
            from .config import ReferenceConfig

            if config is None:
                config = ReferenceConfig()
            elif isinstance(config, dict):
                config = ReferenceConfig.from_dict(config)
        config_d = _config_dict(config)
        if process_fn is not None and (jobs >= 1 or scheduler is not None):
            qual = getattr(process_fn, "__qualname__", "")
            if "<lambda>" in qual or "<locals>" in qual:
                raise DatasetError(f"process_fn {qual!r} cannot be sent to worker processes",
                                   hint="use a module-level function, or jobs=0")

    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    previous = _check_existing(out, name, config_d)
    _clean_stale(out)
    (out / "work" / "models").mkdir(parents=True, exist_ok=True)

    info: dict[str, Any] = {
        "corpus": name, "source": source, "created": previous.get("created", _now()),
        "updated": _now(), "status": "building", "versions": _versions(),
        "config": config_d, "trials": [x.trial_id for x in items],
        "manifest": [x.to_dict() for x in items],
        "failures": previous.get("failures", []),
    }
    write_info(out, _jsonable(info))

    summary = BuildSummary(corpus=name, out=str(out), trials=len(items))
    todo: list[Item] = []
    for it in items:
        if is_complete(out, it.trial_id):
            summary.skipped += 1
        else:
            todo.append(it)

    file_log = _BuildLog(out / "build.log")
    file_log.write(f"build {name} -> {out}: {len(items)} trials, {summary.skipped} already "
                   f"done, {len(todo)} to do (jobs={jobs}, scheduler={scheduler!r})")
    log.info("building %s into %s: %d trials, %d already done, %d to do", name, out,
             len(items), summary.skipped, len(todo))

    from tqdm import tqdm

    bar = tqdm(total=len(items), initial=summary.skipped, desc=f"build {name}", unit="trial",
               file=sys.stderr, disable=not progress, dynamic_ncols=True, smoothing=0.1)

    def on_result(res: dict[str, Any]) -> None:
        if res["status"] == "done":
            summary.done += 1
            file_log.write(f"{res['trial_id']}: done in {res['wall_s']:.1f} s, "
                           f"{res.get('frames', 0)} frames")
        else:
            summary.failed += 1
            file_log.write(f"{res['trial_id']}: FAILED at step {res.get('step')}: "
                           f"{res.get('error')}")
            log.warning("trial %s failed at step %s: %s", res["trial_id"], res.get("step"),
                        res.get("error"))
        bar.update(1)
        bar.set_postfix(failed=summary.failed, refresh=False)

    # Trials whose input files are missing fail at once (no worker needed).
    runnable: list[Item] = []
    for it in todo:
        if isinstance(it, TrialSpec) and it.extra.get("missing"):
            on_result(run_trial(it, config, out, process_fn, isolated=False))
        else:
            runnable.append(it)

    status = "interrupted"
    try:
        if not runnable:
            pass
        elif is_folder or (jobs == 0 and scheduler is None):
            _run_inline(runnable, config, out, process_fn, on_result)
        elif scheduler is not None:
            _run_dask(runnable, config, out, process_fn, scheduler, on_result)
        else:
            _run_local(runnable, config, out, process_fn, jobs, on_result)
        status = "complete"
    finally:
        bar.close()
        summary.wall_s = time.monotonic() - t_start
        _summarise(summary, out, items)
        if status == "complete" and summary.failures:
            status = "incomplete"
        info.update(updated=_now(), status=status, failures=summary.failures,
                    summary=summary.to_dict())
        write_info(out, _jsonable(info))
        file_log.write(f"build {name}: {status}; {summary.done} computed, {summary.skipped} "
                       f"skipped, {summary.failed} failed, {summary.wall_s:.1f} s")
    log.info("build %s finished: %d computed, %d skipped, %d failed", name, summary.done,
             summary.skipped, summary.failed)
    return summary


class _BuildLog:
    """Append-only ``build.log`` (one timestamped line per event)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, line: str) -> None:
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(f"{_now()} {line}\n")
        except OSError as exc:  # pragma: no cover
            log.warning("cannot write %s: %s", self.path, exc)
