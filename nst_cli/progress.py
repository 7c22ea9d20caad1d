"""Progress bar callback: step, losses and speed, reading losses from the device only every few steps."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

from tqdm import tqdm

from nst_core import Step


class ProgressBar:
    """A tqdm bar over every step of a run's plan; losses refresh every ``log_every`` steps.

    The total is known at the first step (steps per segment x segments); the description names the
    segment (scale or chunk) when a plan has several.
    """

    def __init__(self, *, enabled: bool = True, desc: str = "stylizing", log_every: int = 20):
        self.enabled, self.desc, self.log_every = enabled, desc, log_every
        self.segments = 1
        self.ended_early = False  # the last segment converged before its ceiling of steps
        self.bar: tqdm | None = None  # opened at the first step, so set-up messages and errors come first

    def __call__(self, step: Step) -> None:
        self.segments = step.segments
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(total=step.total * step.segments, desc=self.desc, unit="step", file=sys.stderr,
                            dynamic_ncols=True)
        if step.index == 1 and step.segments > 1:
            self.bar.set_description(f"{self.desc} {step.segment + 1}/{step.segments}", refresh=False)
        # A segment the stopping rule ended early leaves steps out: the bar jumps to the next one's place.
        self.bar.update(step.segment * step.total + step.index - self.bar.n)
        if step.index % self.log_every == 0 or step.index == step.total:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in step.losses.items() if k != "total"}, refresh=False)

    def write(self, msg: str) -> None:
        """Print a message without breaking the bar."""
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)

    def segment_done(self, index: int, result) -> None:
        """``on_segment`` hook: a run whose last segment converged ends with a full bar."""
        self.ended_early = index == self.segments - 1 and result.converged

    def close(self) -> None:
        if self.bar is not None:
            if self.ended_early and self.bar.n < self.bar.total:  # the bar ends full at the steps run
                self.bar.total = self.bar.n
                self.bar.refresh()
            self.bar.close()


@contextlib.contextmanager
def first_ctrl_c_stops_at_a_step() -> Iterator[threading.Event]:
    """The first Ctrl-C sets the event the run polls at every step (it then saves a checkpoint and stops);
    a second one interrupts at once."""
    stop = threading.Event()

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("nst: stopping after this step (Ctrl-C again to stop at once) ...", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (an embedding application): no handler, Ctrl-C as usual
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


class BatchProgress:
    """Progress of a batch: one bar over the jobs (done of total, failures, time left estimated from the jobs
    run so far) and one line per worker with its current job and step. Finished jobs print a line each."""

    def __init__(self, total: int, *, parallel: int = 1, enabled: bool = True):
        self.total, self.parallel, self.enabled = total, max(1, parallel), enabled
        self.counts = {"done": 0, "skipped": 0, "failed": 0, "interrupted": 0}
        self.worked_seconds = 0.0
        self.outputs: dict[int, str] = {}
        self.workers: dict[str, tqdm] = {}
        self.bar = tqdm(total=total, desc="0 failed", unit="job", file=sys.stderr, dynamic_ncols=True, position=0,
                        bar_format="jobs {n_fmt}/{total_fmt} |{bar}| {desc}") if enabled else None

    def time_left(self) -> float | None:
        """Seconds left: the mean time of the jobs that ran (not skipped) times those left, over the workers."""
        worked = self.counts["done"] + self.counts["failed"]
        left = self.total - sum(self.counts.values())
        return self.worked_seconds / worked * left / self.parallel if worked else None

    def _postfix(self) -> str:
        left = self.time_left()
        when = "" if left is None else (f" · about {left / 60:.0f} min left" if left >= 90 else f" · about {left:.0f} s left")
        return f"{self.counts['failed']} failed{when}"

    def write(self, msg: str) -> None:
        """A message on stderr that does not break the bars."""
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)

    def on_event(self, worker: str, index: int, info: dict) -> None:
        if not self.enabled or "step" not in info:
            return
        bar = self.workers.get(worker)
        total = info["total"] * info["segments"]
        if bar is None:
            bar = self.workers[worker] = tqdm(total=total, unit="step", file=sys.stderr, dynamic_ncols=True,
                                              position=len(self.workers) + 1, leave=False)
        name = self.outputs.get(index, f"job {index + 1}")
        part = f" {info['segment'] + 1}/{info['segments']}" if info["segments"] > 1 else ""
        bar.set_description(f"{worker}: {name}{part}", refresh=False)
        bar.total = total
        bar.n = info["segment"] * info["total"] + info["step"]
        bar.refresh()

    def on_record(self, index: int, record: dict) -> None:
        state = record["state"]
        self.counts[state] = self.counts.get(state, 0) + 1
        if state in ("done", "failed"):
            self.worked_seconds += float(record.get("seconds") or 0.0)
        if not self.enabled:
            return
        finished = sum(self.counts.values())
        line = f"[{finished}/{self.total}] {state:7s} {record['job']['output']} ({record['seconds']:.1f} s)"
        if record.get("error"):
            line += f": {record['error']}"
        self.bar.write(line, file=sys.stderr)
        self.bar.update(1)
        self.bar.set_description_str(self._postfix())
        worker = record.get("worker")
        if worker in self.workers:
            self.workers.pop(worker).close()

    def close(self) -> None:
        for bar in self.workers.values():
            bar.close()
        self.workers.clear()
        if self.bar is not None:
            self.bar.close()


def summary_table(records: list[dict]) -> str:
    """The batch's end: one row per job (state, seconds, steps, output, error), aligned."""
    rows = [("state", "seconds", "steps", "output")]
    for r in records:
        out = r["job"]["output"] + (f"  ({r['error']})" if r.get("error") else "")
        rows.append((r["state"], f"{r.get('seconds') or 0:.1f}", str(r.get("steps") or "-"), out))
    widths = [max(len(row[k]) for row in rows) for k in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:>{widths[1]}}  {c:>{widths[2]}}  {d}" for a, b, c, d in rows)
