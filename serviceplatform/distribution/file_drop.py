"""The file transport: one ``<BeskedId>.xml`` per message in a drop directory.

A pick-up process (or an operator) takes the files from there; the embedded default needs no
broker. Every file appears whole or not at all. A single message (``deliver``) goes to a
temporary file in the same directory (named ``.<BeskedId>.<random>.tmp``, so a reader globbing
``*.xml`` never sees it), is flushed and fsynced, renamed over the final name with
``os.replace`` (atomic within one file system), and the directory is fsynced so the rename
itself survives a crash.

A batch (``deliver_batch``) is made durable together. On Linux every message of the batch is
written to an unnamed file in the drop directory (``O_TMPFILE``), one ``syncfs`` makes them
all durable, each is linked under its final name, and a second ``syncfs`` makes the names
durable (and, on a file system without a journal, the files' link counts, which the
directory's fsync would not write). ``link`` never replaces a file: a name already there is
compared and, holding other bytes, replaced through a temporary name and a rename. Elsewhere,
or where the file system has no unnamed files, the batch goes to temporary names, one
``syncfs`` (one ``fsync`` per file without it), the renames in the batch's order and one
fsync of the directory. Two fsyncs per file held a national night's delivery to a few hundred
files a second. A crash before the final sync leaves whole files or none, and the caller, not
told of success, delivers the batch again; an unnamed file dies with the process, a temporary
name stays (it never matches ``*.xml``).

Each file costs the system calls it needs and no more, relative to the drop directory opened
once per batch: unnamed, ``open``, ``write``, ``fchmod`` (the umask may have taken bits off),
``link``, ``close``; named, the same with ``O_EXCL`` on a fresh random name (never a leftover
or a link), a ``stat`` of the final name and a ``rename``. ``mkstemp``, file objects and
``Path`` cost as much again in Python. Where a night's delivery spends its time, and why
creating a file can take half a millisecond on some file systems: ``docs/distribution.md``.

Delivering the same ``BeskedId`` again with the same bytes changes nothing (a retry after a
crash between the naming and the caller's bookkeeping). With different bytes the file is
replaced, atomically as well: at-least-once re-delivery of a corrected message is the caller's
business, and a reader that already took the first version will not see the second unless it
looks again. Any ``OSError`` becomes ``DistributorUnavailable`` (retryable).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

from serviceplatform.distribution.base import BatchOutcome, DistributorBase, OutgoingMessage
from serviceplatform.errors import DistributorUnavailable

#: Mode of a directory this transport creates: the pick-up process reads through its group.
DIRECTORY_MODE: Final = 0o750
#: Mode of a message file (the pick-up process reads it through its group).
FILE_MODE: Final = 0o640

# O_EXCL: a temporary file is always new, never one that a link or another writer put there.
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
#: Random names tried for one temporary file before giving up.
_TEMP_ATTEMPTS: Final = 100


class FileDropDistributor(DistributorBase):
    """Writes each message atomically to ``directory/<BeskedId>.xml``."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        # Cleared at the first batch whose file system has no unnamed files.
        self._unnamed = _UNNAMED_FILES

    def path_for(self, besked_id: str) -> Path:
        """Where the message with ``besked_id`` is (or will be) written."""
        return self.directory / f"{besked_id}.xml"

    def deliver(self, message: OutgoingMessage) -> None:
        try:
            with self._opened_directory() as directory:
                name = f"{message.besked_id}.xml"
                if _same_content(directory, name, message.body):
                    return
                temp = _write_temporary(directory, message.besked_id, message.body, sync=True)
                try:
                    os.replace(temp, name, src_dir_fd=directory, dst_dir_fd=directory)
                except BaseException:
                    _discard(directory, [temp])
                    raise
                os.fsync(directory)
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def deliver_batch(self, messages: Sequence[OutgoingMessage]) -> BatchOutcome:
        if not messages:
            return {}
        try:
            with self._opened_directory() as directory:
                if self._unnamed:
                    try:
                        _write_batch_unnamed(directory, messages)
                    except OSError as exc:
                        if exc.errno not in _NO_UNNAMED_FILES:
                            raise
                        # Delivering the batch again is safe: what is in place stays as is.
                        self._unnamed = False
                        _write_batch_named(directory, messages)
                else:
                    _write_batch_named(directory, messages)
        except OSError as exc:
            return {0: self._unavailable(exc)}
        return dict.fromkeys(range(len(messages)))

    @contextlib.contextmanager
    def _opened_directory(self) -> Iterator[int]:
        """The drop directory, created if missing, open for ``*at`` calls and fsync."""
        # Created here rather than in __init__: a drop directory on a mount that is missing
        # at start-up is a retryable delivery failure, not a failed start.
        self.directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        # Names relative to one open directory: a path is resolved once per batch, not
        # once per file and call, and every file lands in the directory that is fsynced.
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)

    def _unavailable(self, exc: OSError) -> DistributorUnavailable:
        # The directory, not the file: the BeskedId may be derived from a CPR number.
        return DistributorUnavailable(f"cannot write to {self.directory}: {exc.strerror or exc}")


def _write_batch_unnamed(directory: int, messages: Sequence[OutgoingMessage]) -> None:
    """Write a batch as unnamed files, make them durable, link them under their names.

    An unnamed file (``O_TMPFILE``) needs no directory entry until it is complete, so a file
    costs one directory insert instead of a temporary name's insert, a rename and a look-up
    of the final name; a crash leaves nothing behind (the kernel frees an unlinked file).
    ``link`` never replaces a file: an existing name is compared, and only a different
    version is replaced (through a temporary name, atomically).
    """
    opened: list[int] = []
    try:
        for message in messages:
            fd = os.open(".", _UNNAMED_FLAGS, FILE_MODE, dir_fd=directory)
            opened.append(fd)
            _write_all(fd, message.body)
            # The umask may have taken bits off the mode given to open.
            os.fchmod(fd, FILE_MODE)
        _syncfs(directory)  # the contents, before any name points at them
        for fd, message in zip(opened, messages, strict=True):
            _link(directory, fd, message)
        # The names, and the files' link counts: without a journal (ext4 can run without
        # one) the directory's fsync would not write the linked files' inodes.
        _syncfs(directory)
    finally:
        for fd in opened:
            os.close(fd)


def _link(directory: int, fd: int, message: OutgoingMessage) -> None:
    """Give the unnamed file ``fd`` the message's name unless that name has these bytes."""
    name = f"{message.besked_id}.xml"
    try:
        # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N: the documented way to name an
        # O_TMPFILE file without CAP_DAC_READ_SEARCH (AT_EMPTY_PATH needs it).
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=directory, follow_symlinks=True)
        return
    except FileExistsError:
        if _same_content(directory, name, message.body):
            return
    for _ in range(_TEMP_ATTEMPTS):
        temp = f".{message.besked_id}.{secrets.token_hex(4)}.tmp"
        try:
            os.link(f"/proc/self/fd/{fd}", temp, dst_dir_fd=directory, follow_symlinks=True)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(errno.EEXIST, "no unused temporary file name")
    try:
        os.replace(temp, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        _discard(directory, [temp])
        raise


def _write_batch_named(directory: int, messages: Sequence[OutgoingMessage]) -> None:
    """Write, make durable and rename a batch; on any error no temporary file stays behind."""
    written: list[tuple[str, str]] = []
    renamed = 0
    try:
        for message in messages:
            name = f"{message.besked_id}.xml"
            if not _same_content(directory, name, message.body):
                temp = _write_temporary(directory, message.besked_id, message.body, sync=False)
                written.append((temp, name))
        if not written:
            return
        _sync_files(directory, [temp for temp, _ in written])
        # In the batch's order: of one BeskedId given twice, the later version stays.
        for temp, name in written:
            os.replace(temp, name, src_dir_fd=directory, dst_dir_fd=directory)
            renamed += 1
        os.fsync(directory)
    except BaseException:
        _discard(directory, [temp for temp, _ in written[renamed:]])
        raise


def _write_temporary(directory: int, besked_id: str, body: bytes, *, sync: bool) -> str:
    """Write ``body`` to a new ``.<BeskedId>.<random>.tmp`` in ``directory``; its name."""
    for _ in range(_TEMP_ATTEMPTS):
        temp = f".{besked_id}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(temp, _CREATE_FLAGS, FILE_MODE, dir_fd=directory)
        except FileExistsError:
            continue  # a leftover of a crashed run, or the same id twice in one batch
        break
    else:
        raise FileExistsError(errno.EEXIST, "no unused temporary file name")
    try:
        try:
            _write_all(fd, body)
            # The umask may have taken bits off the mode given to open.
            os.fchmod(fd, FILE_MODE)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _discard(directory, [temp])
        raise
    return temp


def _write_all(fd: int, body: bytes) -> None:
    view = memoryview(body)
    while view:
        view = view[os.write(fd, view) :]


def _discard(directory: int, names: Sequence[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=directory)


def _same_content(directory: int, name: str, body: bytes) -> bool:
    """True when ``name`` exists in ``directory`` and holds exactly ``body``."""
    try:
        if os.stat(name, dir_fd=directory).st_size != len(body):
            return False
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
    except FileNotFoundError:
        return False
    with os.fdopen(fd, "rb") as handle:
        return handle.read(len(body) + 1) == body


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    return function


_SYNCFS: Final = _load_syncfs()


#: Unnamed files need O_TMPFILE, /proc to name them and syncfs to make them durable together.
_UNNAMED_FILES: Final = (
    hasattr(os, "O_TMPFILE") and _SYNCFS is not None and os.path.isdir("/proc/self/fd")
)
_UNNAMED_FLAGS: Final = os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | os.O_CLOEXEC
#: What opening an unnamed file answers on a file system without them (EISDIR: kernels
#: before 3.11, which read O_TMPFILE as O_DIRECTORY).
_NO_UNNAMED_FILES: Final = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})


def _syncfs(directory: int) -> None:
    """Write everything of the file system ``directory`` is on to its disk."""
    if _SYNCFS is None:
        raise OSError(errno.ENOSYS, "syncfs is not available")
    if _SYNCFS(directory) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def _sync_files(directory: int, names: Sequence[str]) -> None:
    """Make the written files durable: one ``syncfs`` of their file system, or fsync each."""
    if _SYNCFS is not None:
        _syncfs(directory)
        return
    for name in names:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
