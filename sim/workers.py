"""Worker threads that stop promptly: Ctrl-C ends a run within one kernel call.

The compiled kernel runs in ``ctypes`` calls that release the GIL, so Python threads run
them in parallel. A plain ``ThreadPoolExecutor`` block turns Ctrl-C into a long wait: its
exit joins every queued task, which on a table run is all the remaining work (up to a
minute and a half). :func:`run_parallel` and :func:`completed` instead set a shared *stop*
event and drop the queued tasks as soon as the waiting thread is interrupted; running tasks
check the event between kernel calls (each a few milliseconds) and end with
:class:`Stopped`. The main thread waits on futures, which a signal interrupts on POSIX, so
``KeyboardInterrupt`` arrives at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

__all__ = ["Stopped", "check", "completed", "run_parallel"]

T = TypeVar("T")


class Stopped(Exception):
    """Work abandoned because its stop event was set (the run was interrupted)."""


def check(stop: threading.Event | None) -> None:
    """Raise :class:`Stopped` if ``stop`` is set; call it between units of work."""
    if stop is not None and stop.is_set():
        raise Stopped("stopped")


def run_parallel(work: Callable[[range, threading.Event], None], n: int, threads: int,
                 stop: threading.Event | None = None) -> None:
    """Run ``work(slice, stop)`` over ``range(n)`` split into interleaved slices, one per
    thread, and wait for all of them.

    ``work`` must return early (or raise :class:`Stopped`) once ``stop`` is set. When the
    waiting thread is interrupted, or a slice fails, the others are told to stop and the
    exception propagates after they have ended. If ``stop`` was set from outside,
    :class:`Stopped` is raised so a partial result is never used.
    """
    stop = stop if stop is not None else threading.Event()
    if n > 0:
        k = min(threads, n)
        if k == 1:
            work(range(n), stop)
        else:
            pool = ThreadPoolExecutor(k)
            try:
                for f in [pool.submit(work, range(i, n, k), stop) for i in range(k)]:
                    f.result()
            except BaseException:
                stop.set()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    check(stop)


def completed(fn: Callable[..., T], items: Iterable[tuple[Any, ...]], threads: int,
              stop: threading.Event | None = None) -> Generator[tuple[int, T], None, None]:
    """Yield ``(index, fn(*args, stop=stop))`` for each ``args`` of ``items`` as they finish.

    On an exception in the consumer (Ctrl-C included) or in a task, queued tasks are
    dropped, running ones are told to stop, and the exception propagates once they ended.
    Consume it inside ``contextlib.closing(...)``: an exception raised in the loop body
    then closes the generator at once, instead of when the traceback is freed.
    """
    stop = stop if stop is not None else threading.Event()
    pool = ThreadPoolExecutor(max(1, threads))
    finished = False
    try:
        futs: dict[Future[T], int] = {pool.submit(fn, *args, stop=stop): i
                                      for i, args in enumerate(items)}
        for fut in as_completed(futs):
            yield futs[fut], fut.result()
        finished = True
    finally:
        if not finished:  # interrupted, failed, or the consumer stopped early
            stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
