"""Many runs as one batch: jobs from a folder or a TOML manifest, checked entirely before any work, run one
after the other or by worker processes, each failing alone; what was done before is skipped.

A :class:`Job` is a front end, its inputs, its output and its options (any option of ``nst image`` /
``nst audio`` by its config name), serialisable as a dict. :func:`run_batch` hands jobs to an executor and
never looks inside a front end: it calls :func:`run_job`, which does.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from nst_core import InputError, InterruptedRun, NSTError, OutputError
from nst_core.config import config_settings
from nst_core.errors import one_line
from nst_core.fileio import write_text_atomic
from nst_core.plan import fingerprint

if TYPE_CHECKING:
    from .executors import Executor

__all__ = ["Job", "BatchResult", "IMAGE_EXTENSIONS", "AUDIO_EXTENSIONS", "jobs_from_folder", "jobs_from_manifest",
           "check_jobs", "check_batch_folder", "run_job", "run_batch", "BATCH_FORMAT"]

BATCH_FORMAT = "nst-batch/1"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
_OUTPUT_SUFFIX = {"image": ".png", "audio": ".wav"}


def kind_of(path: str | os.PathLike) -> str | None:
    """``image`` or ``audio`` by the file's extension, else None."""
    suffix = Path(path).suffix.lower()
    return "image" if suffix in IMAGE_EXTENSIONS else "audio" if suffix in AUDIO_EXTENSIONS else None


@dataclass
class Job:
    """One run: ``kind`` (``image`` or ``audio``), its content (None for an audio texture), styles, output,
    and ``options`` by config name (``{"image_size": 256, "iterations": 100}``). ``origin`` says where the
    job came from (a manifest line), for messages."""

    kind: str
    content: str | None
    styles: list[str]
    output: str
    options: dict = field(default_factory=dict)
    origin: str = ""

    def config(self):
        from nst_audio.stylize import AudioStyleConfig
        from nst_image.stylize import ImageStyleConfig

        cls = ImageStyleConfig if self.kind == "image" else AudioStyleConfig
        options = dict(self.options)
        if self.kind == "audio" and self.content is None:
            options.setdefault("mode", "texture")
        return cls.of(**options)

    @property
    def inputs(self) -> list[str]:
        return [p for p in [self.content, *self.styles] if p is not None]

    def fingerprint(self) -> str:
        """Hash of the inputs' contents and the settings: equal for a job that would give the same result."""
        return fingerprint({"kind": self.kind, **config_settings(self.config())}, self.inputs)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Job":
        return cls(**{k: d[k] for k in ("kind", "content", "styles", "output", "options", "origin") if k in d})


# ------------------------------------------------------------------------------------------------ making jobs

def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def jobs_from_folder(folder: str | os.PathLike, styles: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                     options: Mapping[str, Any] | None = None) -> list[Job]:
    """A job for every file in ``folder`` (recursively) of the styles' kind, for every style.

    Outputs mirror the folder's layout under ``out_dir``; with several styles each gets a subfolder named
    after it (``out/<style>/<photo>.png``). Pictures are written as PNG, sound as WAV.
    """
    folder, out_dir = Path(folder), Path(out_dir)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give a folder of inputs or a .toml manifest")
    if not styles:
        raise InputError("give at least one --style for a folder of inputs")
    kinds = {kind_of(s) for s in styles}
    if None in kinds or len(kinds) != 1:
        raise InputError("the styles must all be pictures or all be sound files "
                         f"(pictures: {', '.join(IMAGE_EXTENSIONS)}; sound: {', '.join(AUDIO_EXTENSIONS)})")
    kind = kinds.pop()
    contents = [p for p in _files(folder) if kind_of(p) == kind and p.resolve() not in
                {Path(s).resolve() for s in styles}]
    if not contents:
        raise InputError(f"{folder} holds no {kind} files to stylize")
    jobs = []
    for style in styles:
        base = out_dir / Path(style).stem if len(styles) > 1 else out_dir
        for c in contents:
            rel = c.relative_to(folder).with_suffix(_OUTPUT_SUFFIX[kind])
            jobs.append(Job(kind, str(c), [str(style)], str(base / rel), dict(options or {}), origin=str(c)))
    return jobs


def _line_of(text: str, needle: str, start: int = 0) -> int:
    """1-based line of the first ``needle`` at or after character ``start`` (0 when not found)."""
    at = text.find(needle, start)
    return text.count("\n", 0, at) + 1 if at >= 0 else 0


def _key_line(text: str, header: int, entry: Mapping[str, Any], err: NSTError) -> int:
    """The line of the manifest key an error is about: in the job's table, else among the defaults."""
    import re

    names = [err.param] if isinstance(err.param, str) and err.param else list(err.param or ())
    names += re.findall(r"unknown option '(\w+)'", str(err))
    names += ["iterations"] if "steps" in names else []
    for name in names:
        pattern = re.compile(rf"^\s*{re.escape(name)}\s*=", re.MULTILINE)
        found = pattern.search(text, header) if name in entry else pattern.search(text, 0, max(header, 0))
        if found is None:
            found = pattern.search(text)
        if found is not None:
            return text.count("\n", 0, found.start()) + 1
    return text.count("\n", 0, header) + 1 if header >= 0 else 0


def jobs_from_manifest(path: str | os.PathLike, out_dir: str | os.PathLike) -> list[Job]:
    """Jobs from a TOML manifest. Top-level keys are defaults for every job; each ``[[job]]`` table has
    ``content`` (a path or a glob, relative to the manifest's folder; leave it out for an audio texture),
    ``style`` (a path) or ``styles`` (paths: one job per style unless ``blend = true``), optional ``output``
    (for a single content file) and any option of ``nst image`` / ``nst audio`` by its config name.
    Every problem is an InputError that names the manifest and line."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    path, out_dir = Path(path), Path(out_dir)
    if not path.is_file():
        raise InputError(f"manifest {path} does not exist; give a folder of inputs or a .toml manifest")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML ({one_line(err)})") from None
    base = path.parent
    entries = doc.pop("job", None)
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: no [[job]] tables; add at least one with content and style")
    defaults = doc
    jobs: list[Job] = []
    header = 0
    for i, entry in enumerate(entries, start=1):
        header = text.find("[[job]]", header + 1 if i > 1 else 0)
        line = text.count("\n", 0, header) + 1 if header >= 0 else 0
        where = f"{path}:{line}"
        merged = {**defaults, **entry}
        content = merged.pop("content", None)
        styles = merged.pop("styles", None) or ([merged.pop("style")] if "style" in merged else [])
        merged.pop("style", None)
        blend = bool(merged.pop("blend", False))
        output = merged.pop("output", None)
        if not styles:
            raise InputError(f"{where}: job {i} has no style; add style = \"...\" or styles = [...]")
        styles = [str(base / s) for s in styles]
        kind = kind_of(styles[0])
        if kind is None or any(kind_of(s) != kind for s in styles):
            raise InputError(f"{where}: job {i}'s styles must all be pictures or all sound files")
        if content is None:
            if kind != "audio":
                raise InputError(f"{where}: job {i} has no content; a picture needs one")
            contents: list[str | None] = [None]
        else:
            matches = sorted(base.glob(content)) if any(ch in content for ch in "*?[") else [base / content]
            if not matches:
                raise InputError(f"{where}: job {i}'s content {content!r} matches no file")
            contents = [str(m) for m in matches]
        if output is not None and len(contents) > 1:
            raise InputError(f"{where}: job {i} names one output for {len(contents)} content files; leave output "
                             "out to write them under the output folder")
        groups = [styles] if blend else [[s] for s in styles]
        try:  # the options once per table, so that an error can name the line of the key at fault
            Job(kind, contents[0], styles, "", dict(merged)).config()
        except NSTError as err:
            raise InputError(f"{path}:{_key_line(text, header, entry, err)}: {err}") from None
        for c in contents:
            for group in groups:
                if output is not None:
                    out = out_dir / output
                else:
                    stem = Path(c).stem if c is not None else "texture"
                    tag = "+".join(Path(s).stem for s in group)
                    out = out_dir / (f"{stem}_{tag}" + _OUTPUT_SUFFIX[kind])
                jobs.append(Job(kind, c, group, str(out), dict(merged), origin=where))
    return jobs


def _check_options(job: Job) -> None:
    try:
        job.config()
    except NSTError as err:
        raise InputError(f"{job.origin}: {err}") from None


def check_jobs(jobs: Sequence[Job]) -> None:
    """Everything a batch needs, checked before any work: inputs exist, options are valid, outputs are
    distinct, writable and not inputs. The first problem is an InputError (or OutputError) naming the job."""

    from nst_audio.io import SAVE_FORMATS as AUDIO_FORMATS
    from nst_image.io import SAVE_FORMATS as IMAGE_FORMATS

    if not jobs:
        raise InputError("the batch has no jobs")
    seen: dict[str, str] = {}
    inputs = {str(Path(p).resolve()) for job in jobs for p in job.inputs}
    for job in jobs:
        where = job.origin or job.output
        for p in job.inputs:
            if not Path(p).is_file():
                raise InputError(f"{where}: input {p} does not exist or is not a file")
        _check_options(job)
        formats = IMAGE_FORMATS if job.kind == "image" else AUDIO_FORMATS
        if Path(job.output).suffix.lower() not in formats:
            raise OutputError(f"{where}: output {job.output} must end in one of {', '.join(formats)} for a {job.kind} job")
        out = str(Path(job.output).resolve())
        if out in seen:
            raise OutputError(f"{where}: output {job.output} is also the output of {seen[out]}; give each job its own")
        if out in inputs:
            raise OutputError(f"{where}: output {job.output} is an input of the batch; choose another output folder")
        seen[out] = where
    return None


# ------------------------------------------------------------------------------------------------ running jobs

class _Worker:
    """What a worker process keeps between jobs: backbones by their weights settings, and the style targets
    (Gram matrices) it computed, by style signal, size, layers and network (:class:`nst_core.TargetCache`)."""

    def __init__(self):
        from nst_core import TargetCache

        self.backbones: dict[tuple, Any] = {}
        self.targets = TargetCache()

    def backbone(self, cfg):
        from nst_core import seed_everything
        from nst_image.weights import build_extractor

        key = (cfg.weights, cfg.backbone, cfg.pooling, cfg.weights_layout)
        if cfg.weights == "random":  # drawn from the job's seed, as `nst image` would: the same job, the same net
            key += (cfg.seed,)
            seed_everything(cfg.seed)
        if key not in self.backbones:
            self.backbones[key] = build_extractor(cfg.weights, backbone=cfg.backbone, pooling=cfg.pooling,
                                                  layout=cfg.weights_layout)
        return self.backbones[key]


_WORKER = _Worker()


def _done_before(job: Job, fp: str) -> bool:
    from nst_core import trace_path

    out, tr = Path(job.output), trace_path(job.output)
    if not (out.is_file() and tr.is_file()):
        return False
    try:
        doc = json.loads(tr.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and doc.get("job_fingerprint") == fp and isinstance(doc.get("runs"), list)


def _is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError"


def _stylize_image_job(job: Job, cfg, *, resume: bool, checkpoint_every: int, should_stop, callbacks,
                       record: dict):
    """The image job, retried once with half the memory budget when ``image_size`` is ``auto`` and the
    device ran out of memory (the estimate behind ``auto`` was too optimistic for this device)."""
    from nst_core import available_memory_bytes, checkpoint_path, resolve_device
    from nst_image import stylize_image

    ckpt = checkpoint_path(job.output)
    kwargs = dict(extractor=_WORKER.backbone(cfg), checkpoint=ckpt, checkpoint_every=checkpoint_every,
                  should_stop=should_stop, callbacks=callbacks, target_cache=_WORKER.targets)
    try:
        return stylize_image(job.content, job.styles, cfg, resume=resume and ckpt.is_file(), **kwargs)
    except Exception as err:
        if not (_is_out_of_memory(err) and cfg.image_size == "auto"):
            raise
        device = resolve_device(cfg.device)
        if device.type == "cuda":
            import torch

            torch.cuda.empty_cache()
        limit = available_memory_bytes(device) // 2
        record["retried"] = f"out of memory at image_size auto; retried once with half the memory ({one_line(err)[:120]})"
        ckpt.unlink(missing_ok=True)  # the checkpoint of the larger size cannot continue at a smaller one
        return stylize_image(job.content, job.styles, cfg, memory_limit=limit, **kwargs)


def run_job(job: Job | Mapping[str, Any], *, skip_done: bool = True, resume: bool = False,
            checkpoint_every: int = 0, should_stop: Callable[[], bool] | None = None,
            on_step: Callable[[dict], None] | None = None) -> dict:
    """Run one job in this process; never raises for the job's own failure. Returns its record: ``state``
    (``done``, ``skipped``, ``failed``), ``seconds``, ``steps``, ``metrics``, ``error`` (one line), and
    ``targets`` (style-target cache hits and misses in this job).
    A job saves a checkpoint beside its output every ``checkpoint_every`` steps (0: only when stopped);
    ``resume`` continues from it. When ``should_stop()`` turns true the job saves its checkpoint (an image
    job also its best picture so far), and the record's state is ``interrupted``. ``on_step`` receives
    ``{"step", "total", "segment", "segments"}`` after every optimizer step (the caller throttles it).
    An image job with ``image_size="auto"`` that runs out of memory is retried once with half the memory."""
    job = job if isinstance(job, Job) else Job.from_dict(job)
    start = time.perf_counter()
    record: dict = {"job": job.to_dict(), "state": "failed", "seconds": 0.0, "error": None, "metrics": None,
                    "steps": None, "pid": os.getpid(), "host": _host()}
    hits, misses = _WORKER.targets.hits, _WORKER.targets.misses
    callbacks = []
    if on_step is not None:
        callbacks.append(lambda st: on_step({"step": st.index, "total": st.total, "segment": st.segment,
                                             "segments": st.segments}))
    try:
        fp = job.fingerprint()
        record["fingerprint"] = fp
        if skip_done and _done_before(job, fp):
            record.update(state="skipped", seconds=time.perf_counter() - start)
            return record
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        cfg = job.config()
        if job.kind == "image":
            try:
                result = _stylize_image_job(job, cfg, resume=resume, checkpoint_every=checkpoint_every,
                                            should_stop=should_stop, callbacks=callbacks, record=record)
            except InterruptedRun as err:
                from nst_image import save_image

                save_image(err.partial, job.output, inputs=job.inputs)
                record.update(state="interrupted", error=str(err), seconds=time.perf_counter() - start)
                return record
        else:
            from nst_audio import stylize_audio
            from nst_core import checkpoint_path

            ckpt = checkpoint_path(job.output)
            try:
                result = stylize_audio(job.content, job.styles, cfg, callbacks=callbacks, target_cache=_WORKER.targets,
                                       checkpoint=ckpt, checkpoint_every=checkpoint_every,
                                       resume=resume and ckpt.is_file(), should_stop=should_stop)
            except InterruptedRun as err:  # no partial sound: the checkpoint holds the chunks done
                record.update(state="interrupted", error=str(err), seconds=time.perf_counter() - start)
                return record
        result.trace["job_fingerprint"] = fp
        result.save(job.output)
        record.update(state="done", metrics=result.metrics, steps=result.trace["steps"])
    except NSTError as err:
        record["error"] = str(err)
    except Exception as err:  # a failure of this job only: the batch goes on and records it
        if _is_out_of_memory(err):
            where = "on the device" if type(err).__name__ == "OutOfMemoryError" else "in host memory"
            advice = "lower image_size or use image_size auto" if job.kind == "image" else "lower chunk_seconds"
            record["error"] = f"out of memory {where} ({one_line(err)[:160]}); {advice}"
        else:
            record["error"] = f"internal error: {type(err).__name__}: {one_line(err)[:200]}"
            record["traceback"] = traceback.format_exc(limit=8)
    finally:
        record["targets"] = {"hits": _WORKER.targets.hits - hits, "misses": _WORKER.targets.misses - misses}
    record["seconds"] = time.perf_counter() - start
    return record


def _host() -> str:
    import socket

    return socket.gethostname()


@dataclass
class BatchResult:
    """What :func:`run_batch` returns: one record per job, in the jobs' order, and ``batch.json``'s path."""

    records: list[dict]
    path: Path

    def count(self, state: str) -> int:
        return sum(1 for r in self.records if r["state"] == state)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0


def check_batch_folder(out: Path, *, resume: bool) -> Path:
    """``out/batch.json``; an OutputError when ``out`` holds a batch already and ``resume`` is False, or is a file."""
    path = Path(out) / "batch.json"
    if Path(out).exists() and not Path(out).is_dir():
        raise OutputError(f"output folder {out} is a file; choose a folder")
    if path.exists() and not resume:
        raise OutputError(f"{out} holds a batch already ({path.name}); add --resume to finish it, or choose another "
                          "output folder")
    return path


def _write_batch(path: Path, records: list[dict | None], jobs: Sequence[Job], started: float) -> None:
    rows = [r if r is not None else {"job": j.to_dict(), "state": "pending"} for r, j in zip(records, jobs)]
    doc = {"format": BATCH_FORMAT, "started": started, "updated": time.time(),
           "counts": {s: sum(1 for r in rows if r["state"] == s)
                      for s in ("done", "skipped", "failed", "interrupted", "pending")},
           "jobs": rows}
    write_text_atomic(path, json.dumps(doc, indent=1, default=str) + "\n")


def run_batch(jobs: Sequence[Job], out_dir: str | os.PathLike, *, executor: "str | Executor" = "local",
              workers: int | None = None, threads: int | None = None, address: str | None = None,
              skip_done: bool = True, resume: bool = False, checkpoint_every: int = 0,
              should_stop: Callable[[], bool] | None = None,
              on_record: Callable[[int, dict], None] | None = None,
              on_event: Callable[[str, int, dict], None] | None = None,
              log: Callable[[str], None] | None = None) -> BatchResult:
    """Run ``jobs`` (checked first, see :func:`check_jobs`) and write ``out_dir/batch.json`` after each.

    ``executor``: ``local`` (default: this process, or ``workers`` processes, one per visible GPU by default;
    see :class:`nst_jobs.executors.LocalExecutor`), ``ray`` (a Ray cluster at ``address``, ``auto``, or a
    local one; see :class:`nst_jobs.ray_executor.RayExecutor`), or an executor object. ``threads``: intra-op
    threads per worker (default: the cores divided among the workers).
    ``out_dir`` may hold an earlier batch only with ``resume=True``, which finishes what is left (jobs done
    before are skipped by their inputs' and settings' hash, image jobs continue from their checkpoints).
    ``on_record(index, record)`` is called as each job ends, ``on_event(worker, index, info)`` as a job
    starts on a worker and as it steps (for progress). When ``should_stop()`` turns true (Ctrl-C) the batch
    stops: running image jobs save their checkpoint and best result, no new job starts, and
    :class:`nst_core.InterruptedRun` is raised; ``resume=True`` finishes the batch.
    """
    from .executors import make_executor

    say = log or (lambda _m: None)
    check_jobs(jobs)
    ex = make_executor(executor, workers=workers, threads=threads, address=address)
    out = Path(out_dir)
    path = check_batch_folder(out, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict | None] = [None] * len(jobs)
    started = time.time()

    def finished(i: int, record: dict) -> None:
        records[i] = record
        _write_batch(path, records, jobs, started)
        if on_record is not None:
            on_record(i, record)

    stop = should_stop or (lambda: False)
    if ex.name == "local":
        say(f"executor: {ex.describe()}")
    ex.run([(i, job.to_dict()) for i, job in enumerate(jobs)],
           {"skip_done": skip_done, "resume": resume, "checkpoint_every": checkpoint_every},
           finished=finished, event=on_event or (lambda *_a: None), should_stop=stop, log=say)
    if any(r is None or r["state"] == "interrupted" for r in records):
        done = sum(1 for r in records if r is not None and r["state"] in ("done", "skipped"))
        raise InterruptedRun(f"batch interrupted with {done} of {len(jobs)} job(s) finished; {path} says which; "
                             "continue with the same command and --resume")
    return BatchResult([r for r in records if r is not None], path)
