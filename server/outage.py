"""Log a dependency outage as three kinds of line, not one traceback per retry.

While Redis (or PostgreSQL) is down, code that retries every half second used to log a full
traceback each time (issue #9: 21 ERROR tracebacks in a 2 s outage). An :class:`Outage` logs
once when the failures start, then at most one line per ``every`` seconds with the number of
failures since, and once when the dependency answers again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REPEAT_SECONDS = 10.0


class Outage:
    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        every: float = REPEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._what = what
        self._every = every
        self._clock = clock
        self._since: float | None = None
        self._last_line = 0.0
        self._failures = 0
        self._unreported = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> None:
        """One more failed attempt: logged when the outage starts, then once per ``every`` seconds."""
        now = self._clock()
        self._failures += 1
        if self._since is None:
            self._since = self._last_line = now
            self._unreported = 0
            self._log.error("%s is unavailable: %s", self._what, _describe(error))
            return
        self._unreported += 1
        if now - self._last_line >= self._every:
            self._log.warning(
                "%s still unavailable after %.0f s (%d failures in the last %.0f s): %s",
                self._what,
                now - self._since,
                self._unreported,
                now - self._last_line,
                _describe(error),
            )
            self._last_line = now
            self._unreported = 0

    def recovered(self) -> None:
        """The dependency answered: log the end of an outage (nothing when there was none)."""
        if self._since is None:
            return
        self._log.warning(
            "%s is available again after %.1f s (%d failed attempts)",
            self._what,
            self._clock() - self._since,
            self._failures,
        )
        self._since = None
        self._failures = 0
        self._unreported = 0


def _describe(error: BaseException) -> str:
    text = str(error).strip() or "no message"
    return f"{type(error).__name__}: {text[:300]}"
