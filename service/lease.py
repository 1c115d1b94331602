"""The service's connection pool: asyncpg connections lent one request at a
time. What asyncpg's `Pool` gave the service (at most `max_size`, opened on
demand, waiters served first come first served, a closed connection
replaced, an open transaction rolled back, idle ones closed down to
`min_size`, draining on close), without what it cost every request: a proxy
object per acquire, and a task and a timer per release."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

import asyncpg

from service.internals import settle_cancellation

Connect = Callable[[], Awaitable[asyncpg.Connection]]

# Idle connections above min_size are closed after this long unused.
MAX_IDLE_SECONDS = 300.0
# How often idle connections are looked at: one timer per pool, none per request.
SWEEP_SECONDS = 10.0


class Lease:
    """Open with `await Lease.open(...)`; `acquire()`, then `release()`
    every connection acquired, whatever happened; `close()` at exit."""

    def __init__(
        self, connect: Connect, min_size: int, max_size: int, settle_seconds: float = 10.0
    ) -> None:
        self._connect = connect
        self.min_size = min_size
        self.max_size = max_size
        # The longest a release waits on the server (a cancel, a ROLLBACK).
        self.settle_seconds = settle_seconds
        self._idle: deque[tuple[asyncpg.Connection, float]] = deque()  # newest on the right
        self._every: set[asyncpg.Connection] = set()  # open ones, lent or idle
        self._size = 0  # open, and being opened
        self._lent = 0
        # Each waiter gets a connection, or None: a slot to open one in.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closing = False
        self._drained: asyncio.Event | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    @classmethod
    async def open(
        cls, connect: Connect, min_size: int, max_size: int, settle_seconds: float = 10.0
    ) -> Lease:
        """A lease with `min_size` connections open; what failed to open raises."""
        lease = cls(connect, min_size, max_size, settle_seconds)
        lease._size = min_size
        opened = await asyncio.gather(
            *(lease._open() for _ in range(min_size)), return_exceptions=True
        )
        failed = [o for o in opened if isinstance(o, BaseException)]
        for conn in opened:
            if isinstance(conn, asyncpg.Connection):
                lease._idle.append((conn, time.monotonic()))
        if failed:
            lease.terminate()
            raise failed[0]
        loop = asyncio.get_running_loop()
        lease._sweeper = loop.call_later(SWEEP_SECONDS, lease._sweep_later)
        return lease

    def get_size(self) -> int:
        return self._size

    def get_idle_size(self) -> int:
        return len(self._idle)

    async def _open(self) -> asyncpg.Connection:
        """A new connection in a slot already counted in _size."""
        try:
            conn = await self._connect()
        except BaseException:
            self._size -= 1
            self._hand_slot()
            raise
        self._every.add(conn)
        return conn

    async def acquire(self) -> asyncpg.Connection:
        """An idle connection, else a new one while there are fewer than
        max_size, else the first one given back (bound the wait with
        asyncio.timeout: a waiter that gives up takes nothing)."""
        while self._idle:
            conn = self._idle.pop()[0]
            if not conn.is_closed():
                self._lent += 1
                return conn
            self._forget(conn)
        if self._closing:
            raise asyncpg.InterfaceError("the pool is closing")
        if self._size < self.max_size:
            self._size += 1
            conn = await self._open()
            self._lent += 1
            return conn
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            conn = await waiter
        except BaseException:
            if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
                waiter.cancel()  # nothing was handed to it
            elif waiter.result() is None:  # handed a slot meanwhile: not used
                self._size -= 1
                self._hand_slot()
            else:  # handed a connection meanwhile: not used
                self._give_back(waiter.result())
            raise
        if conn is None:  # a slot freed: open a connection in it
            conn = await self._open()
        self._lent += 1
        return conn

    async def release(self, conn: asyncpg.Connection, *, discard: bool = False) -> None:
        """Give `conn` back, once a statement cancelled on it has stopped and
        a transaction left open is rolled back, as asyncpg's Pool did.
        `discard`: the driver lost track of it, so it is closed instead."""
        self._lent -= 1
        try:
            if discard:
                conn.terminate()
            elif not conn.is_closed():
                await settle_cancellation(conn, self.settle_seconds)
                # A cancel that failed closes the connection (is_closed first).
                if not conn.is_closed() and conn.is_in_transaction():
                    await conn.execute("ROLLBACK", timeout=self.settle_seconds)
        except BaseException:
            conn.terminate()
            raise
        finally:
            self._give_back(conn)

    def _give_back(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed() or self._closing:
            self._forget(conn)
            if not conn.is_closed():
                conn.terminate()
        else:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(conn)
                    return
            self._idle.append((conn, time.monotonic()))
        if self._closing and self._lent == 0 and self._drained is not None:
            self._drained.set()

    def _forget(self, conn: asyncpg.Connection) -> None:
        """A connection gone: its slot goes to the first waiter, if any."""
        if conn in self._every:
            self._every.discard(conn)
            self._size -= 1
            self._hand_slot()

    def _hand_slot(self) -> None:
        while self._waiters and not self._closing:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._size += 1
                waiter.set_result(None)
                return

    def sweep(self, now: float) -> None:
        """Close connections idle since before now - MAX_IDLE_SECONDS, oldest
        first, down to min_size."""
        while self._idle and self._size > self.min_size:
            conn, since = self._idle[0]
            if now - since < MAX_IDLE_SECONDS:
                break
            self._idle.popleft()
            self._forget(conn)
            conn.terminate()

    def _sweep_later(self) -> None:
        self.sweep(time.monotonic())
        if not self._closing:
            loop = asyncio.get_running_loop()
            self._sweeper = loop.call_later(SWEEP_SECONDS, self._sweep_later)

    async def close(self) -> None:
        """Lend nothing more, wait for what is lent to come back, then close
        every connection."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the pool is closing"))
        self._waiters.clear()
        if self._lent:
            self._drained = asyncio.Event()
            await self._drained.wait()
        idle = [conn for conn, _ in self._idle]
        self._idle.clear()
        for conn in idle:
            self._forget(conn)
        await asyncio.gather(*(conn.close() for conn in idle), return_exceptions=True)

    def terminate(self) -> None:
        """Close every connection at once, lent or not."""
        self._closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self._every):
            conn.terminate()
        self._every.clear()
        self._idle.clear()
        self._size = 0
