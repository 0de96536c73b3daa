"""Drive socketify's libuv loop from asyncio, event-driven (no busy polling).

socketify's own ``App.run()`` calls libuv's non-blocking ``uv_run`` from asyncio again and again
(``call_soon``), which keeps a whole core busy. Here asyncio is the only loop that sleeps: libuv's
backend descriptor (its epoll fd, readable whenever any libuv handle has work) is registered with
``add_reader``, and a timer follows ``uv_backend_timeout`` so libuv's own timers (uWS's idle-timeout
sweep) still fire. Work started from asyncio (a publish, a send) is flushed by :meth:`wake`, which
runs one libuv iteration soon (uWS drains its pub/sub queues in the loop's post-poll hook).

The backend fd is read with libuv's public ``uv_backend_fd``/``uv_backend_timeout`` through ctypes,
from the very ``libuv.so.1`` socketify's library is linked against. If that fails (another build
of socketify), the descriptor is found in ``/proc/self/fd`` and a short fixed tick replaces
``uv_backend_timeout``.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

FALLBACK_TICK_SECONDS = 0.05
MAX_TIMER_SECONDS = 1.0
"""Re-check libuv's timers at least this often, whatever it says (cheap insurance)."""


class _LibUV:
    """The two read-only libuv calls we need, bound through ctypes."""

    def __init__(self, native_loop: int) -> None:
        name = ctypes.util.find_library("uv") or "libuv.so.1"
        lib = ctypes.CDLL(name)
        lib.uv_backend_fd.argtypes = [ctypes.c_void_p]
        lib.uv_backend_fd.restype = ctypes.c_int
        lib.uv_backend_timeout.argtypes = [ctypes.c_void_p]
        lib.uv_backend_timeout.restype = ctypes.c_int
        self._lib = lib
        self._loop = ctypes.c_void_p(native_loop)

    def backend_fd(self) -> int:
        fd: int = self._lib.uv_backend_fd(self._loop)
        return fd

    def backend_timeout(self) -> int:
        """Milliseconds until libuv's next timer; -1 for none, 0 when work is pending."""
        timeout: int = self._lib.uv_backend_timeout(self._loop)
        return timeout


def _native_loop_address(socketify_loop: Any) -> int:
    from socketify.native import ffi

    pointer = socketify_loop.uv_loop.get_native_loop()
    address: int = int(ffi.cast("uintptr_t", pointer))
    return address


def _epoll_fds_from_proc(exclude: set[int]) -> list[int]:
    found = []
    for entry in os.listdir("/proc/self/fd"):
        if not entry.isdigit() or int(entry) in exclude:
            continue
        try:
            target = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue
        if target == "anon_inode:[eventpoll]":
            found.append(int(entry))
    return found


class EventLoop:
    """asyncio's loop in charge, libuv run only when it has something to do.

    Create it right after the socketify ``App`` (it owns ``app.loop``), then call :meth:`run`.
    """

    def __init__(self, app: Any) -> None:
        self._socketify_loop = app.loop
        self.asyncio_loop: asyncio.AbstractEventLoop = app.loop.loop
        # socketify installs an eager task factory that breaks anyio and surprises asyncio code.
        self.asyncio_loop.set_task_factory(None)
        self._uv = app.loop.uv_loop
        self._wake_pending = False
        self._timer: asyncio.TimerHandle | None = None
        self._libuv: _LibUV | None = None
        self.backend_fd = -1
        self.using_fallback = False

    def install(self) -> None:
        """Register libuv's backend descriptor with asyncio."""
        try:
            self._libuv = _LibUV(_native_loop_address(self._socketify_loop))
            self.backend_fd = self._libuv.backend_fd()
        except (OSError, AttributeError, ImportError) as error:
            log.warning("libuv backend fd through ctypes failed (%s); scanning /proc", error)
            self._libuv = None
        if self.backend_fd < 0:
            self.using_fallback = True
            selector = getattr(self.asyncio_loop, "_selector", None)
            exclude = {selector.fileno()} if selector is not None else set()
            candidates = _epoll_fds_from_proc(exclude)
            if len(candidates) != 1:
                raise RuntimeError(f"cannot find libuv's backend descriptor (candidates: {candidates})")
            self.backend_fd = candidates[0]
        self._socketify_loop.started = True
        self.asyncio_loop.add_reader(self.backend_fd, self._run_uv)
        self._run_uv()

    def _run_uv(self) -> None:
        self._wake_pending = False
        self._uv.run_nowait()
        self._schedule_timer()

    def _schedule_timer(self) -> None:
        if self._libuv is None:
            delay = FALLBACK_TICK_SECONDS
        else:
            timeout = self._libuv.backend_timeout()
            delay = MAX_TIMER_SECONDS if timeout < 0 else min(timeout / 1000, MAX_TIMER_SECONDS)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.asyncio_loop.call_later(delay, self._run_uv)

    def wake(self) -> None:
        """Run one libuv iteration soon: call after publishing or sending from asyncio code."""
        if not self._wake_pending:
            self._wake_pending = True
            self.asyncio_loop.call_soon(self._run_uv)

    def run(self, until: Callable[[], Any] | None = None) -> None:
        """Run until :meth:`stop`."""
        self.install()
        try:
            self.asyncio_loop.run_forever()
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self.asyncio_loop.remove_reader(self.backend_fd)

    def stop(self) -> None:
        self._socketify_loop.started = False
        self.asyncio_loop.stop()
