"""A TCP proxy that can cut its link: partitions between real daemons on one machine.

Each ordered pair of parties (A dials B) gets its own proxy, and A's config
dials B through it (`[peers] b = "127.0.0.1:PROXY_PORT"`), so cutting one
proxy cuts exactly one direction of one link. TLS passes through untouched:
the proxy sees only ciphertext.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

__all__ = ["LinkProxy", "ProxyMesh"]


class LinkProxy:
    """Forwards 127.0.0.1:port to ``target``; `cut()` drops every connection until `heal()`."""

    def __init__(self, target: tuple[str, int], loop: asyncio.AbstractEventLoop) -> None:
        self.target = target
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
        try:
            while not self._cut:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()


class ProxyMesh:
    """One `LinkProxy` per ordered pair of members, on one event-loop thread."""

    def __init__(self, listen: dict[str, tuple[str, int]]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.links = {
            (source, target): LinkProxy(address, self._loop)
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

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
