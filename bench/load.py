"""A lean closed-loop HTTP/1.1 load generator and the figures it reports.

``run_round`` drives one target with C client threads, each on its own keep-alive connection,
each taking the next pre-built request from one shared queue as soon as its previous answer is
in, so that C requests are in flight until the queue runs dry (with a fixed share per thread, a
thread on a slower connection would still be sending after the others had finished, and the
round's end would run at a lower concurrency than reported); it returns the wall time, the
latency of every request and the errors. It speaks HTTP/1.1 on a raw socket with pre-built
request frames: on a 2-core machine each microsecond the client spends is taken from the server
under test (``http.client`` parses every answer's headers with the email package).

``tree_cpu_seconds`` reads the CPU time of a server's process tree from ``/proc``, so a round can
report how many CPU milliseconds the server spent per request, next to the client's own.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MAX_ERROR_SAMPLES = 5  # errors kept verbatim per round (the count is always complete)


class ProtocolError(Exception):
    """The server's answer is not the HTTP/1.1 this client understands."""


class ServerClosed(ProtocolError):
    """The server closed the connection before answering (an idle keep-alive ran out)."""


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
    machine_cpu_seconds: float  # every process on the machine, ours included
    error_samples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else 0.0


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks; ``sorted_values`` must be sorted."""
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * fraction
    low, high = int(position), min(int(position) + 1, len(sorted_values) - 1)
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
        """Send one request frame and read the whole answer: (status, body).

        A reused connection the server has closed is reopened and the request sent again,
        once, as HTTP clients do; on a fresh connection that is an error.
        """
        if self.sock is None:
            self.open()
            return self._round_trip(frame)
        try:
            return self._round_trip(frame)
        except (ServerClosed, ConnectionResetError, BrokenPipeError):
            self.open()
            return self._round_trip(frame)

    def _round_trip(self, frame: bytes) -> tuple[int, bytes]:
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
            raise ServerClosed("connection closed before the status line")
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
class _Seen:
    """What one client thread saw."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.errors += 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(text)


def _drive(
    target: Target,
    frames: queue.SimpleQueue[bytes],
    seen: _Seen,
    start: threading.Barrier,
    ready: threading.Event,
    timeout: float,
) -> None:
    connection = _Connection(target, timeout)
    with contextlib.suppress(OSError):
        connection.open()  # before the clock starts; on failure the first request tries again
    clock = time.perf_counter
    expect = target.expect
    start.wait()
    ready.wait()
    take = frames.get_nowait
    while True:
        try:
            frame = take()
        except queue.Empty:
            break
        _exchange(connection, frame, clock(), seen, expect)
    connection.close()


def _exchange(
    connection: _Connection, frame: bytes, since: float, seen: _Seen, expect: bytes
) -> None:
    """Send ``frame`` and read its answer; its latency runs from ``since``."""
    try:
        status, body = connection.exchange(frame)
    except (OSError, ProtocolError, ValueError) as exc:
        seen.latencies.append(time.perf_counter() - since)
        seen.fail(f"{type(exc).__name__}: {exc}")
        connection.close()
        return
    seen.latencies.append(time.perf_counter() - since)
    if status != 200:
        seen.fail(f"HTTP {status}: {body[:600]!r}")
    elif expect not in body:
        seen.fail(f"200 without {expect!r}: {body[:600]!r}")


def run_round(
    target: Target,
    bodies: Sequence[bytes],
    *,
    concurrency: int,
    server_cpu: Mapping[str, Callable[[], float]] | None = None,
    timeout: float = 30.0,
) -> RoundResult:
    """Send every body once, ``concurrency`` at a time; time only the sending.

    ``server_cpu`` are named probes returning CPU seconds used so far (``tree_cpu_seconds``);
    the result holds what each grew by during the round.
    """
    probes = dict(server_cpu or {})
    frames: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for body in bodies:
        frames.put(target.frame(body))
    seen_by_thread = [_Seen() for _ in range(concurrency)]
    # Every thread connects, then waits at the barrier; the clock starts when all are ready.
    start = threading.Barrier(concurrency + 1, timeout=timeout)
    ready = threading.Event()
    threads = [
        threading.Thread(
            target=_drive, args=(target, frames, seen, start, ready, timeout), daemon=True
        )
        for seen in seen_by_thread
    ]
    return _measured_round(target, len(bodies), threads, seen_by_thread, start, ready, probes)


def _measured_round(
    target: Target,
    requests: int,
    threads: Sequence[threading.Thread],
    seen_by_thread: Sequence[_Seen],
    start: threading.Barrier,
    ready: threading.Event,
    probes: Mapping[str, Callable[[], float]],
    on_go: Callable[[float], None] = lambda began: None,
) -> RoundResult:
    """Start ``threads``, release them together once all are at ``start``, and measure the
    round: wall time, client, server and machine CPU, latencies and errors.

    ``on_go`` gets the start instant just before the threads are released.
    """
    for thread in threads:
        thread.start()
    start.wait()
    server_before = {name: probe() for name, probe in probes.items()}
    client_before = time.process_time()
    machine_before = machine_busy_seconds()
    began = time.perf_counter()
    on_go(began)
    ready.set()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    client_cpu = time.process_time() - client_before
    machine = machine_busy_seconds() - machine_before
    server_used = {name: probe() - server_before[name] for name, probe in probes.items()}
    return RoundResult(
        target=target.name,
        requests=requests,
        # Requests no thread sent (every thread died early: a bug, not the server) are errors.
        errors=sum(seen.errors for seen in seen_by_thread)
        + requests
        - sum(len(seen.latencies) for seen in seen_by_thread),
        wall_seconds=wall,
        latencies=[latency for seen in seen_by_thread for latency in seen.latencies],
        client_cpu_seconds=client_cpu,
        server_cpu_seconds=server_used,
        machine_cpu_seconds=machine,
        error_samples=[sample for seen in seen_by_thread for sample in seen.samples][
            :MAX_ERROR_SAMPLES
        ],
    )


def _drive_open(
    target: Target,
    frames: queue.SimpleQueue[tuple[float, bytes]],
    seen: _Seen,
    start: threading.Barrier,
    ready: threading.Event,
    origin: list[float],
    timeout: float,
) -> None:
    """Send each frame at its scheduled time; its latency counts from that time.

    Counting from the schedule, not from when a thread got round to sending, keeps a stalled
    server's backlog in the figures (no coordinated omission).
    """
    connection = _Connection(target, timeout)
    with contextlib.suppress(OSError):
        connection.open()
    clock = time.perf_counter
    expect = target.expect
    start.wait()
    ready.wait()
    begin = origin[0]
    take = frames.get_nowait
    while True:
        try:
            offset, frame = take()
        except queue.Empty:
            break
        due = begin + offset
        wait = due - clock()
        if wait > 0:
            time.sleep(wait)
        _exchange(connection, frame, due, seen, expect)
    connection.close()


def run_open(
    target: Target,
    bodies: Sequence[bytes],
    *,
    rate: float,
    connections: int = 32,
    server_cpu: Mapping[str, Callable[[], float]] | None = None,
    timeout: float = 30.0,
) -> RoundResult:
    """Send every body once at a fixed arrival rate (open loop), on up to ``connections``.

    Request ``i`` is due ``i / rate`` seconds after the start whatever the answers before it
    did; its latency runs from that due time to the end of its answer. ``connections`` bounds
    how many can be in flight: enough that a server keeping up never waits for the client.
    """
    if rate <= 0:
        raise ValueError("the arrival rate must be positive")
    probes = dict(server_cpu or {})
    frames: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
    for index, body in enumerate(bodies):
        frames.put((index / rate, target.frame(body)))
    seen_by_thread = [_Seen() for _ in range(connections)]
    start = threading.Barrier(connections + 1, timeout=timeout)
    ready = threading.Event()
    origin = [0.0]
    threads = [
        threading.Thread(
            target=_drive_open,
            args=(target, frames, seen, start, ready, origin, timeout),
            daemon=True,
        )
        for seen in seen_by_thread
    ]

    def set_origin(began: float) -> None:
        origin[0] = began + 0.01  # a little ahead, so the first due times are not already past

    return _measured_round(
        target, len(bodies), threads, seen_by_thread, start, ready, probes, set_origin
    )


def tree_cpu_seconds(root_pid: int, *, root_only: bool = False) -> float:
    """CPU seconds (user + system) a process and its descendants have used (0 without /proc).

    Processes that ended are not counted, which suits long-lived servers.
    """
    stats = _read_stats()
    wanted = {root_pid}
    if not root_only:
        wanted.update(_descendants(root_pid, stats))
    return sum(stats[pid][1] for pid in wanted if pid in stats) / os.sysconf("SC_CLK_TCK")


def descendants(root_pid: int) -> list[int]:
    """The pids of every process below ``root_pid`` still running, sorted (none without /proc)."""
    return sorted(_descendants(root_pid, _read_stats()))


def _descendants(root_pid: int, stats: Mapping[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    pending = [root_pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.add(child)
            pending.append(child)
    return found


def machine_busy_seconds() -> float:
    """CPU seconds every core has spent busy since boot (0 without ``/proc/stat``)."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy.
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _read_stats() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, utime + stime in clock ticks), for every process still there."""
    found: dict[int, tuple[int, int]] = {}
    if not os.path.isdir("/proc"):
        return found
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


@dataclass(frozen=True)
class Figures:
    """One target's figures pooled over rounds: total requests over total measured time."""

    target: str
    requests: int
    errors: int
    wall_seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    client_cpu_share: float  # the load generator's CPU time / wall time (1.0 = one core)
    other_cpu_share: float  # the rest of the machine (other users' work): noise in the figures
    server_cpu_ms: dict[str, float]  # per probe: server CPU milliseconds per request

    @property
    def rate(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @classmethod
    def pool(cls, results: Sequence[RoundResult]) -> Figures:
        if not results:
            raise ValueError("no rounds to pool")
        latencies = sorted(latency for result in results for latency in result.latencies)
        requests = sum(result.requests for result in results)
        wall = sum(result.wall_seconds for result in results)
        probes = results[0].server_cpu_seconds.keys()
        return cls(
            target=results[0].target,
            requests=requests,
            errors=sum(result.errors for result in results),
            wall_seconds=wall,
            p50_ms=percentile(latencies, 0.50) * 1000,
            p90_ms=percentile(latencies, 0.90) * 1000,
            p99_ms=percentile(latencies, 0.99) * 1000,
            client_cpu_share=sum(r.client_cpu_seconds for r in results) / wall if wall else 0.0,
            other_cpu_share=max(0.0, sum(_others(r) for r in results) / wall) if wall else 0.0,
            server_cpu_ms={
                name: 1000 * sum(r.server_cpu_seconds[name] for r in results) / requests
                for name in probes
            },
        )


def _others(result: RoundResult) -> float:
    server = result.server_cpu_seconds.get("server", 0.0)
    return result.machine_cpu_seconds - server - result.client_cpu_seconds


@dataclass
class Comparison:
    """A subject and its baseline driven in alternating rounds, and what the rounds add up to."""

    baseline: str
    subject: str
    rounds: list[RoundResult]

    def figures(self, target: str) -> Figures:
        return Figures.pool([r for r in self.rounds if r.target == target])

    @property
    def targets(self) -> list[str]:
        """Every target, in the order of the first round."""
        return list(dict.fromkeys(r.target for r in self.rounds))

    @property
    def ratio(self) -> float:
        """subject/baseline requests per second, each pooled over all its rounds."""
        return self.ratio_of(self.subject)

    def ratio_of(self, target: str) -> float:
        """``target``/baseline requests per second, each pooled over all its rounds."""
        baseline = self.figures(self.baseline).rate
        return self.figures(target).rate / baseline if baseline else 0.0

    @property
    def round_ratios(self) -> list[float]:
        """subject/baseline per pair of rounds, in the order they ran."""
        baseline = [r.rate for r in self.rounds if r.target == self.baseline]
        subject = [r.rate for r in self.rounds if r.target == self.subject]
        return [s / b if b else 0.0 for b, s in zip(baseline, subject, strict=True)]

    @property
    def noise(self) -> float:
        """The largest share of a core that other processes used during any round."""
        return max(Figures.pool([r]).other_cpu_share for r in self.rounds)

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)
