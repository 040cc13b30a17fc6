"""A TCP proxy that can cut or delay its link: partitions and WAN latency on one machine.

Each ordered pair of parties (A dials B) gets its own proxy, and A's config
dials B through it (`[peers] b = "127.0.0.1:PROXY_PORT"`), so cutting one
proxy cuts exactly one direction of one link. TLS passes through untouched:
the proxy sees only ciphertext.

The delay line (``delay_ms``, `ProxyMesh.set_delay`) holds every chunk of
bytes, in both directions of every connection through the proxy, for
``delay_ms`` after the proxy read it, then writes it on: a one-way network
delay (a request and its reply on the relay's two links: twice the delay).
Chunks leave in the order they came, never reordered, also when the delay
changes (a chunk waits behind those before it). It applies to connections
already open, so one cluster can be measured at several delays. Bytes in
flight are bounded (`IN_FLIGHT_CHUNKS_MAX` reads per direction); beyond that
the proxy stops reading, as a full network would. ``tc netem`` does the same
in the kernel, where it is available; this is loopback only and adds no loss,
jitter or bandwidth limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

__all__ = ["IN_FLIGHT_CHUNKS_MAX", "LinkProxy", "ProxyMesh"]

READ_MAX_BYTES = 65536
IN_FLIGHT_CHUNKS_MAX = 1024  # per direction of a connection: at most 64 MiB held
_Chunk = tuple[float, bytes]  # (when to write it, loop time; the bytes)


class LinkProxy:
    """Forwards 127.0.0.1:port to ``target``; `cut()` drops every connection until `heal()`.

    ``delay_ms`` (settable at any time from any thread) delays every chunk one way.
    """

    def __init__(
        self, target: tuple[str, int], loop: asyncio.AbstractEventLoop, *, delay_ms: float = 0.0
    ) -> None:
        self.target = target
        self.delay_ms = delay_ms
        self._loop = loop
        self._cut = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), loop
        ).result(5)
        self.port: int = self._server.sockets[0].getsockname()[1]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._set_cut(True), self._loop).result(5)

    def heal(self) -> None:
        asyncio.run_coroutine_threadsafe(self._set_cut(False), self._loop).result(5)

    def close_listener(self) -> None:
        self._server.close()

    async def _set_cut(self, cut: bool) -> None:
        self._cut = cut
        if cut:
            for writer in list(self._writers):
                writer.close()
            self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            self._pump(reader, upstream_writer), self._pump(upstream_reader, writer)
        )

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one direction into the delay line; `_deliver` writes it on when due."""
        line: asyncio.Queue[_Chunk | None] = asyncio.Queue(IN_FLIGHT_CHUNKS_MAX)
        delivery = asyncio.ensure_future(self._deliver(line, writer))
        try:
            while not self._cut:
                data = await reader.read(READ_MAX_BYTES)
                if not data:
                    break
                await line.put((self._loop.time() + self.delay_ms / 1000, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await line.put(None)  # `_deliver` always drains the line, so this never blocks long
            await delivery

    async def _deliver(
        self, line: asyncio.Queue[_Chunk | None], writer: asyncio.StreamWriter
    ) -> None:
        broken = False
        try:
            while (chunk := await line.get()) is not None:
                if broken or self._cut:
                    continue  # the connection is gone: drain the line so the reader never blocks
                due, data = chunk
                wait_s = due - self._loop.time()
                if wait_s > 0:
                    await asyncio.sleep(wait_s)
                try:
                    writer.write(data)
                    await writer.drain()
                except (ConnectionError, OSError):
                    broken = True
                    writer.close()
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


def _check_delay(delay_ms: float) -> None:
    if delay_ms < 0:
        raise ValueError("delay_ms must not be negative")


class ProxyMesh:
    """One `LinkProxy` per ordered pair of members, on one event-loop thread."""

    def __init__(self, listen: dict[str, tuple[str, int]], *, delay_ms: float = 0.0) -> None:
        _check_delay(delay_ms)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.links = {
            (source, target): LinkProxy(address, self._loop, delay_ms=delay_ms)
            for source in listen
            for target, address in listen.items()
            if source != target
        }

    def addresses_for(self, source: str) -> dict[str, str]:
        """What ``source``'s `[peers]` table must say."""
        return {t: link.address for (s, t), link in self.links.items() if s == source}

    def partition(self, side: set[str], *, one_way: bool = False) -> None:
        """Cut every link from ``side`` to the rest (and back, unless ``one_way``)."""
        for (source, target), link in self.links.items():
            crosses = (source in side) != (target in side)
            if crosses and (not one_way or source in side):
                link.cut()

    def heal(self) -> None:
        for link in self.links.values():
            link.heal()

    def set_delay(self, delay_ms: float) -> None:
        """Delay every link, one way, by ``delay_ms`` (0: forward at once)."""
        _check_delay(delay_ms)
        for link in self.links.values():
            link.delay_ms = delay_ms

    def close(self) -> None:
        """Stop listening, drop every connection, end every pump, then the loop's thread."""
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        for link in self.links.values():
            link.close_listener()
            await link._set_cut(True)
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
