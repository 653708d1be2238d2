"""Parsing large request bodies in worker processes, away from the event loop's GIL.

A worker thread parsing a multi-megabyte body holds the GIL for most of that time (orjson
does not release it, and checking bars is Python), so every small request waits on the event
loop for its turn: two maximum-size bars requests raised small requests' p99 tenfold and more.
In a separate process the same work only shares the CPU, which the kernel divides fairly.

The pool (NEPSE_HEAVY_WORKERS processes) starts with the first large body, not at start-up,
and a worker that dies is replaced on the next large body. Where processes cannot be started
(no /dev/shm for the pool's semaphores, say) the work runs on a thread, with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("nepse_predictor.server")


class HeavyWork:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a worker process (a thread when there are no processes)."""
        if self.processes == 0:
            return await asyncio.to_thread(function, *args)
        if self._pool is None:
            try:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.processes, mp_context=multiprocessing.get_context("spawn")
                )
            except (OSError, ImportError, NotImplementedError) as exc:
                log.warning(
                    "cannot start worker processes (%s); large bodies are parsed on a thread",
                    exc,
                )
                self.processes = 0
                return await asyncio.to_thread(function, *args)
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
