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
        self.bar.update(1)
        if step.index % self.log_every == 0 or step.index == step.total:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in step.losses.items() if k != "total"}, refresh=False)

    def write(self, msg: str) -> None:
        """Print a message without breaking the bar."""
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
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
