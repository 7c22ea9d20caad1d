"""Progress bar callback: step, losses and speed, reading losses from the device only every few steps."""

from __future__ import annotations

import sys

from tqdm import tqdm

from nst_core import Step


class ProgressBar:
    """A tqdm bar over every step of every scale; losses refresh every ``log_every`` steps.

    ``restart_each_run``: the bar starts over when a new optimization begins (audio chunks and channels).
    """

    def __init__(self, total: int, *, log_every: int = 20, enabled: bool = True, desc: str = "stylizing",
                 restart_each_run: bool = False):
        self.total, self.log_every, self.enabled, self.desc = total, log_every, enabled, desc
        self.restart_each_run = restart_each_run
        self.bar: tqdm | None = None  # opened at the first step, so set-up messages and errors come first

    def __call__(self, step: Step) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = tqdm(total=self.total, desc=self.desc, unit="step", file=sys.stderr, dynamic_ncols=True)
        elif self.restart_each_run and step.index == 1:
            self.bar.reset(total=step.total)
        self.bar.update(1)
        if step.index % self.log_every == 0 or step.index == step.total:
            losses = step.losses
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items() if k != "total"}, refresh=False)

    def write(self, msg: str) -> None:
        """Print a message without breaking the bar."""
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
