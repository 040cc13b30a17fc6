"""The test proxy's delay line: a round trip through it really takes twice the one-way delay
longer, and bytes leave in the order they came, also when the delay changes."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from mpc_ledger.testing.proxy import ProxyMesh


@pytest.fixture
def echo_server():
    """A TCP server on loopback that writes back whatever it reads."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=echo, args=(connection,), daemon=True).start()

    def echo(connection):
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()
    stop.set()
    thread.join(2)
    server.close()


def _round_trip_s(address: str, count: int = 3) -> float:
    """The shortest of ``count`` one-byte round trips through the proxy, in seconds."""
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        best = float("inf")
        for _ in range(count):
            started = time.monotonic()
            connection.sendall(b"x")
            assert connection.recv(1) == b"x"
            best = min(best, time.monotonic() - started)
        return best


def test_a_round_trip_through_a_delayed_link_takes_twice_the_delay_longer(echo_server):
    mesh = ProxyMesh({"client": ("127.0.0.1", 1), "echo": echo_server})
    try:
        address = mesh.addresses_for("client")["echo"]
        undelayed_s = _round_trip_s(address)
        mesh.set_delay(50)
        delayed_s = _round_trip_s(address)
    finally:
        mesh.close()
    # one way 50 ms each direction of the connection: at least 100 ms more per round trip
    assert delayed_s - undelayed_s >= 0.0995, (undelayed_s, delayed_s)


def test_bytes_keep_their_order_when_the_delay_changes(echo_server):
    mesh = ProxyMesh({"client": ("127.0.0.1", 1), "echo": echo_server}, delay_ms=30)
    try:
        host, _, port = mesh.addresses_for("client")["echo"].rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            sent = b""
            for index in range(20):
                if index == 10:
                    mesh.set_delay(0)  # later bytes must still wait behind earlier ones
                chunk = f"{index:04d}".encode() * 50
                connection.sendall(chunk)
                sent += chunk
                time.sleep(0.002)
            received = b""
            while len(received) < len(sent):
                received += connection.recv(65536)
    finally:
        mesh.close()
    assert received == sent


def test_a_negative_delay_is_refused():
    mesh = ProxyMesh({"a": ("127.0.0.1", 1), "b": ("127.0.0.1", 2)})
    try:
        with pytest.raises(ValueError, match="negative"):
            mesh.set_delay(-1)
    finally:
        mesh.close()
