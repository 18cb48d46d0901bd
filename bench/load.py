"""A lean closed-loop HTTP/1.1 load generator and the figures it reports.

``run_round`` drives one target with C client threads, each on its own keep-alive connection,
each sending its share of pre-built request bodies back to back; it returns the wall time, the
latency of every request and the errors. The client speaks HTTP/1.1 on a raw socket with a
pre-built request frame per body, because on a 2-core machine every microsecond the load
generator spends is taken from the server under test (``http.client`` parses each answer's
headers with the email package; ``requests`` costs far more again).

``ProcessTreeCpu`` reads the CPU time of a server's process tree from ``/proc``, so a round can
report how many CPU milliseconds the server spent per request, next to the client's own.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Errors kept verbatim per round (the count is always complete).
MAX_ERROR_SAMPLES = 5


class ProtocolError(Exception):
    """The server's answer is not the HTTP/1.1 this client understands."""


@dataclass(frozen=True)
class Target:
    """Where to send requests, and what a good answer contains."""

    name: str
    host: str
    port: int
    path: str
    content_type: str
    expect: bytes  # every 200 answer must contain these bytes, or it counts as an error

    def frame(self, body: bytes) -> bytes:
        """The whole HTTP request for ``body``, built once before any timing starts."""
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: {self.content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("ascii") + body


@dataclass
class RoundResult:
    """One target driven through one batch of requests."""

    target: str
    requests: int
    errors: int
    wall_seconds: float
    latencies: list[float]  # seconds, one per request, failed ones included
    client_cpu_seconds: float
    server_cpu_seconds: dict[str, float]  # probe name -> CPU seconds the server spent
    error_samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else 0.0


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks; ``sorted_values`` must be sorted."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


class _Connection:
    """One keep-alive connection; reconnects when the server closes or a request fails."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.file: io.BufferedReader | None = None

    def open(self) -> None:
        self.close()
        sock = socket.create_connection((self.target.host, self.target.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.file = sock.makefile("rb", buffering=65536)  # type: ignore[assignment]

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, frame: bytes) -> tuple[int, bytes]:
        """Send one request frame and read the whole answer: (status, body)."""
        if self.sock is None or self.file is None:
            self.open()
        assert self.sock is not None and self.file is not None
        self.sock.sendall(frame)
        status, length, chunked, close = self._read_head(self.file)
        body = self._read_chunked(self.file) if chunked else _read_exact(self.file, length)
        if close:
            self.close()
        return status, body

    @staticmethod
    def _read_head(file: io.BufferedReader) -> tuple[int, int, bool, bool]:
        line = file.readline(65537)
        if not line:
            raise ProtocolError("connection closed before the status line")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError(f"bad status line {line[:80]!r}")
        status = int(parts[1])
        length, chunked, close = 0, False, parts[0] == b"HTTP/1.0"
        while True:
            header = file.readline(65537)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        return status, length, chunked, close

    @staticmethod
    def _read_chunked(file: io.BufferedReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(file.readline(1024).split(b";")[0], 16)
            if size == 0:
                while file.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(_read_exact(file, size))
            file.readline(3)


def _read_exact(file: io.BufferedReader, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise ProtocolError(f"answer cut short: {len(data)} of {size} bytes")
    return data


@dataclass
class _Share:
    """What one client thread sends and what it saw."""

    frames: list[bytes]
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.errors += 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(text)


def _drive(
    target: Target, share: _Share, start: threading.Barrier, ready: threading.Event, timeout: float
) -> None:
    connection = _Connection(target, timeout)
    try:
        connection.open()
    except OSError as exc:
        share.fail(f"connect: {exc}")
    clock = time.perf_counter
    expect = target.expect
    record = share.latencies.append
    start.wait()
    ready.wait()
    for frame in share.frames:
        began = clock()
        try:
            status, body = connection.exchange(frame)
        except (OSError, ProtocolError, ValueError) as exc:
            record(clock() - began)
            share.fail(f"{type(exc).__name__}: {exc}")
            connection.close()
            continue
        record(clock() - began)
        if status != 200:
            share.fail(f"HTTP {status}: {body[:300]!r}")
        elif expect not in body:
            share.fail(f"200 without {expect!r}: {body[:300]!r}")
    connection.close()


def run_round(
    target: Target,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    server_cpu: Mapping[str, Callable[[], float]] | None = None,
    timeout: float = 30.0,
) -> RoundResult:
    """Send every body once, ``concurrency`` at a time; time only the sending.

    ``server_cpu`` are named probes returning CPU seconds used so far (``ProcessTreeCpu``);
    the result holds what each grew by during the round.
    """
    probes = dict(server_cpu or {})
    frames = [target.frame(body) for body in bodies]
    shares = [_Share(frames[index::concurrency]) for index in range(concurrency)]
    # Every thread connects, then waits at the barrier; the clock starts when all are ready.
    start = threading.Barrier(concurrency + 1)
    ready = threading.Event()
    threads = [
        threading.Thread(target=_drive, args=(target, share, start, ready, timeout), daemon=True)
        for share in shares
    ]
    for thread in threads:
        thread.start()
    start.wait()
    server_before = {name: probe() for name, probe in probes.items()}
    client_before = time.process_time()
    began = time.perf_counter()
    ready.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    client_cpu = time.process_time() - client_before
    server_used = {name: probe() - server_before[name] for name, probe in probes.items()}
    return RoundResult(
        target=target.name,
        requests=len(frames),
        errors=sum(share.errors for share in shares),
        wall_seconds=wall,
        latencies=[latency for share in shares for latency in share.latencies],
        client_cpu_seconds=client_cpu,
        server_cpu_seconds=server_used,
        error_samples=[sample for share in shares for sample in share.samples][:MAX_ERROR_SAMPLES],
    )


class ProcessTreeCpu:
    """CPU seconds (user + system) used so far by a process and all its descendants.

    Reads ``/proc``; where there is none, ``available`` is False and ``seconds()`` is 0.
    Processes that ended are not counted, which suits long-lived servers.
    """

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.available = Path("/proc/self/stat").exists()
        self._tick = os.sysconf("SC_CLK_TCK") if self.available else 100

    def seconds(self, *, root_only: bool = False) -> float:
        if not self.available:
            return 0.0
        stats = _read_stats()
        wanted = {self.root_pid}
        if not root_only:
            children: dict[int, list[int]] = {}
            for pid, (ppid, _) in stats.items():
                children.setdefault(ppid, []).append(pid)
            pending = [self.root_pid]
            while pending:
                for child in children.get(pending.pop(), []):
                    wanted.add(child)
                    pending.append(child)
        ticks = sum(stats[pid][1] for pid in wanted if pid in stats)
        return ticks / self._tick


def _read_stats() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, utime + stime in clock ticks), for every process still there."""
    found: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_bytes()
        except OSError:
            continue  # ended while we looked
        # The command name (field 2) may hold spaces and parentheses: split after the last ")".
        fields = raw[raw.rfind(b")") + 2 :].split()
        found[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return found
