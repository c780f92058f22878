"""Exact totals across worker processes, at a scrape cost that does not grow with history.

Each process counts into its own memory-mapped file in the multiprocess
directory and holds a shared ``flock`` on it for as long as it lives; the kernel
drops that lock when the process exits, however it exits (SIGKILL included).
A scrape sums the live files and folds every unlocked (dead) file into one
archive file, then deletes it. prometheus_client's multiprocess mode keeps every
dead worker's files and reads them all on every scrape; here the cost of a
scrape is O(live workers), whatever number of workers ever existed.

Scrapes hold an exclusive lock on ``boxkite-<key>.lock`` so a file is never
counted both in the archive and on its own. The archive records the files it
last absorbed; if a scraper dies between writing the archive and deleting them,
the next scrape deletes them without counting them twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import secrets
import struct
import time
import weakref
from collections.abc import Iterator

import numpy as np
import orjson

log = logging.getLogger("boxkite_middleware")

_MAGIC = b"BXKC0001"
_HEADER = struct.Struct("<8sQ16s")  # magic, number of slots, layout key
_OFFSET = 32  # counts start here: 8-byte aligned
_SUFFIX = ".bkc"  # not .db: prometheus_client's MultiProcessCollector reads *.db


class FileStore:
    """Per-process counts in ``directory``; :meth:`snapshot` sums all processes.

    Every process that builds the same layout (same model, baseline and routes)
    shares the totals, which is what gunicorn or uvicorn workers need.
    """

    def __init__(self, directory: str | os.PathLike[str], key: str, size: int) -> None:
        self.directory = os.fspath(directory)
        if not os.path.isdir(self.directory):
            raise ValueError(f"multiprocess directory {self.directory!r} does not exist")
        self.key = key
        self.size = size
        self._prefix = f"boxkite-{key}-"
        self._header = _HEADER.pack(_MAGIC, size, key.encode("ascii"))
        self._warned: set[str] = set()
        self._listing: tuple[int, list[str]] = (-1, [])
        self._fd: int | None = None
        self.name: str | None = None
        self.array: np.ndarray | None = None
        self.buf: memoryview | None = None
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _reopen(ref))

    def open(self) -> memoryview:
        """Create this process's file, on its first count (a forked child that never
        counts leaves no file behind)."""
        name = f"{self._prefix}{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
        final = os.path.join(self.directory, name)
        tmp = os.path.join(self.directory, f".{name}.tmp")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        length = _OFFSET + 8 * self.size
        os.ftruncate(fd, length)
        os.pwrite(fd, self._header, 0)
        # Locked before it gets its real name, so no scraper can ever take it for dead.
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.rename(tmp, final)
        self._mmap = mmap.mmap(fd, length)
        self._fd = fd
        self.name = name
        self.array = np.frombuffer(self._mmap, dtype=np.float64, count=self.size, offset=_OFFSET)
        self.buf = memoryview(self._mmap)[_OFFSET:].cast("d")
        return self.buf

    def _after_fork(self) -> None:
        # The child must not count into its parent's file: it gets its own on its first
        # count. Closing the inherited descriptor lets the parent's lock go with the parent.
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self.name = self.array = self.buf = None

    @contextlib.contextmanager
    def _scrape_lock(self) -> Iterator[None]:
        fd = os.open(
            os.path.join(self.directory, f"boxkite-{self.key}.lock"), os.O_RDWR | os.O_CREAT, 0o644
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self, fd: int, name: str) -> np.ndarray | None:
        """Counts in a file, or None (logged once) if it is not a complete store file."""
        data = os.pread(fd, _OFFSET + 8 * self.size + 1, 0)
        if len(data) != _OFFSET + 8 * self.size or data[: _HEADER.size] != self._header:
            if name not in self._warned:
                self._warned.add(name)
                log.warning("boxkite: skipping corrupt multiprocess file %s", name)
            return None
        return np.frombuffer(data, dtype=np.float64, count=self.size, offset=_OFFSET)

    def _read_archive(self, path: str) -> tuple[np.ndarray, bytes]:
        """Counts of exited processes, and the raw JSON list of the files last absorbed."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return np.zeros(self.size), b"[]"
        end = _OFFSET + 8 * self.size
        if data[: _HEADER.size] == self._header and len(data) > end:
            return np.frombuffer(data, dtype=np.float64, count=self.size, offset=_OFFSET), data[
                end:
            ]
        log.error("boxkite: corrupt archive %s moved aside; counts of exited workers lost", path)
        os.replace(path, f"{path}.corrupt")
        return np.zeros(self.size), b"[]"

    def _names(self) -> list[str]:
        """This layout's files in the directory, re-listed only when it may have changed.

        A directory that once held 1,024 worker files stays large on disk and slow to
        list after they are gone. Its mtime changes with every file added or removed;
        while it is recent, a coarse clock could hide a change, so list anyway.
        """
        mtime = os.stat(self.directory).st_mtime_ns
        cached_mtime, names = self._listing
        if mtime != cached_mtime or time.time_ns() - mtime < 2_000_000_000:
            prefix = self._prefix
            names = [
                n
                for n in os.listdir(self.directory)
                if n.startswith(prefix) and n.endswith(_SUFFIX)
            ]
            self._listing = (mtime, names)
        return names

    def snapshot(self) -> np.ndarray:
        archive_path = os.path.join(self.directory, f"boxkite-{self.key}-archive{_SUFFIX}")
        with self._scrape_lock():
            archive, absorbed_json = self._read_archive(archive_path)
            absorbed: set[str] | None = None  # parsed only if there is a file to check
            total = np.zeros(self.size) if self.array is None else self.array.copy()
            dead: list[str] = []
            for name in self._names():
                if name == self.name or name == os.path.basename(archive_path):
                    continue
                path = os.path.join(self.directory, name)
                if absorbed is None:
                    absorbed = _names_in(absorbed_json)
                if name in absorbed:  # a previous scraper died before deleting it
                    _unlink(path)
                    continue
                try:
                    fd = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    continue
                try:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        alive = False
                    except BlockingIOError:
                        alive = True
                    counts = self._read(fd, name)
                finally:
                    os.close(fd)
                if counts is None:
                    continue
                if alive:
                    total += counts
                else:
                    archive = archive + counts
                    dead.append(name)
            if dead:
                tmp = f"{archive_path}.tmp-{os.getpid()}"
                with open(tmp, "wb") as f:
                    f.write(self._header.ljust(_OFFSET, b"\0"))
                    f.write(np.ascontiguousarray(archive, dtype=np.float64).tobytes())
                    f.write(orjson.dumps(dead))
                os.replace(tmp, archive_path)
                for name in dead:
                    _unlink(os.path.join(self.directory, name))
            return total + archive


def _names_in(raw: bytes) -> set[str]:
    try:
        names = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("boxkite: unreadable list of absorbed files in the archive; ignored")
        return set()
    return {n for n in names if isinstance(n, str)} if isinstance(names, list) else set()


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _reopen(ref: weakref.ref[FileStore]) -> None:
    store = ref()
    if store is not None:
        store._after_fork()


def env_multiprocess_dir() -> str | None:
    """The directory named by ``PROMETHEUS_MULTIPROC_DIR`` (or its old lower-case name)."""
    legacy = "prometheus_multiproc_dir"  # the name prometheus_client used before 0.10
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get(legacy)
