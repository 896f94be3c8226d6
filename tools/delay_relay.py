"""A TCP relay that delays every byte by a fixed one-way latency in each direction (test tooling).

Where the kernel has no ``sch_netem`` (``tc qdisc ... netem`` fails with
"Specified qdisc kind is unknown"), the network-namespace tests put this relay
in front of the server: each chunk read from one side is written to the other
side ``delay`` seconds after it arrived, in order, so a message crossing the
relay takes at least ``delay`` longer, as with netem on a link. Bandwidth is not
limited here (the namespaces' links may be shaped by ``tbf`` as well).

Run as ``python tools/delay_relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY``;
it prints ``ready`` once it listens and serves until killed.
"""

from __future__ import annotations

import queue
import socket
import sys
import threading
import time


def _pump(src: socket.socket, dst: socket.socket, delay: float) -> None:
    """Copy ``src`` to ``dst``, every chunk ``delay`` seconds after it was read; EOF likewise."""
    chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()

    def read() -> None:
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + delay, data))
            if not data:
                return

    def write() -> None:
        while True:
            due, data = chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    threading.Thread(target=read, daemon=True).start()
    threading.Thread(target=write, daemon=True).start()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def serve(listen: tuple[str, int], target: tuple[str, int], delay: float) -> None:
    """Accept on ``listen``; relay each connection to ``target`` with ``delay`` each way."""
    server = socket.create_server(listen)
    print("ready", flush=True)
    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection(target, timeout=10)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _pump(client, upstream, delay)
        _pump(upstream, client, delay)


if __name__ == "__main__":
    serve(_address(sys.argv[1]), _address(sys.argv[2]), float(sys.argv[3]))
