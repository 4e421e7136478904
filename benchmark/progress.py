"""Long work is never silent: a tqdm bar on a terminal, log lines at a bounded interval everywhere else.

Progress bars draw only on a terminal; under CI, ``nohup`` or ``> log`` they print nothing for the whole
run. :func:`progress` wraps the same loop: with ``bar=True`` it is a plain tqdm bar; otherwise it logs one
line when the stage starts, one at most every :data:`LOG_INTERVAL` seconds (``SINGERBENCH_LOG_INTERVAL``),
and one when it ends, each with the count done, the total and the rate, on the ``singerbench`` logger.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

log = logging.getLogger("singerbench.progress")
#: seconds between two progress lines when not on a terminal
LOG_INTERVAL = float(os.environ.get("SINGERBENCH_LOG_INTERVAL", "30"))


class Progress:
    """A progress counter with tqdm's ``update``/``set_postfix``/``close``, logging when it cannot draw."""

    def __init__(self, desc: str, total: int | None, unit: str, bar: bool, interval: float | None = None,
                 quiet_below: int = 0, initial: int = 0) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.interval = LOG_INTERVAL if interval is None else float(interval)
        self.n = self._initial = initial  # work already done before this process (a resumed training)
        self.postfix = ""
        self._bar: Any = None
        self._logs = not bar and (total is None or total >= quiet_below)
        self._start = self._last = time.monotonic()
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, initial=initial)
        elif self._logs:
            log.info("%s: started%s", desc, f" ({total} {unit})" if total is not None else "")

    def _line(self, word: str) -> None:
        elapsed = time.monotonic() - self._start
        of = f"/{self.total}" if self.total is not None else ""
        done_here = self.n - self._initial
        rate = ""
        if elapsed > 0 and done_here:  # slow work reads better as seconds per item (an epoch, a run)
            per_s = done_here / elapsed
            rate = f", {per_s:.1f} {self.unit}/s" if per_s >= 1 else f", {1 / per_s:.1f} s/{self.unit}"
        extra = f", {self.postfix}" if self.postfix else ""
        log.info("%s: %s %d%s %s in %.0f s%s%s", self.desc, word, self.n, of, self.unit, elapsed, rate, extra)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        else:
            self._heartbeat()

    def set_postfix(self, ordered_dict: dict | None = None, refresh: bool = True, **values: Any) -> None:
        """tqdm's ``set_postfix``; off a terminal it is also a heartbeat (a line if the interval has passed)."""
        values = {**(ordered_dict or {}), **values}
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=refresh)
        else:
            self._heartbeat()

    def _heartbeat(self) -> None:
        """Off a terminal: a line when the interval has passed since the last one."""
        if self._logs and time.monotonic() - self._last >= self.interval:
            self._last = time.monotonic()
            self._line("at")

    def refresh(self) -> None:
        if self._bar is not None:
            self._bar.refresh()

    def close(self, finished: bool = True) -> None:
        """End the bar, or log the last line: "done" when ``finished``, else "stopped at" (an error, Ctrl-C)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._logs:
            self._logs = False
            self._line("done" if finished else "stopped at")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(finished=exc_type is None)


def progress(iterable: Iterable, desc: str, bar: bool, total: int | None = None, unit: str = "it",
             interval: float | None = None) -> Iterator:
    """Iterate ``iterable`` with a tqdm bar (``bar=True``) or bounded-interval log lines (otherwise)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Progress(desc, total, unit, bar, interval) as p:
        for item in iterable:
            yield item
            p.update(1)
