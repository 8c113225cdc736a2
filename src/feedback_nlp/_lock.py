"""One job per output: an advisory lock file that names its holder (pid, host, start time).

The lock is an OS file lock (``flock``) on ``<out>.lock``, so it is released by the kernel when its
process dies, even by SIGKILL: a lock file left by a killed run is stale by construction and the next run
takes it over (and says so). A live holder is refused with its pid and host in the message.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.csv.lock"
    >>> with JobLock(path, what="a job writing out.csv") as lock:
    ...     path.exists()
    True
    >>> path.exists()
    False
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._atomic import distinct_paths, short_name
from .errors import JobLockedError, UsageError

__all__ = ["JobLock", "JobLockedError"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _holder(text: str) -> dict[str, Any]:
    try:
        info = json.loads(text)
        return info if isinstance(info, dict) else {}
    except ValueError:
        return {}


def _describe(info: dict[str, Any]) -> str:
    if not info:
        return "holder unknown"
    return f"pid {info.get('pid')} on host {info.get('host')}, started {info.get('started')}"


class JobLock:
    """Hold ``path`` exclusively for the ``with`` block; ``took_over`` describes a stale holder replaced.

    Raises :class:`JobLockedError` at entry when another process holds it.
    """

    def __init__(self, path: str | os.PathLike, *, what: str = "a job",
                 then: str = "run again with --resume") -> None:
        self.path = Path(path)
        self.what = what
        self.then = then
        self.took_over: str | None = None
        self._fd: int | None = None

    def __enter__(self) -> JobLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):  # retry when the file was replaced between open and lock
            try:  # never through a link: a symlink planted at the lock's path had its target overwritten
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
            except OSError as exc:
                if exc.errno == errno.ELOOP and self.path.is_symlink():
                    self.path.unlink()  # the link only: the file it points to is left as it was
                    continue
                raise
            st = os.fstat(fd)
            if st.st_nlink > 1:  # a hard link to another file: writing the lock would overwrite it
                os.close(fd)
                raise UsageError(f"the lock file {self.path} is a hard link to another file; remove it and run again")
            if not stat.S_ISREG(st.st_mode):  # a named pipe there was the bare "Illegal seek" of the lock's read
                os.close(fd)
                raise UsageError(f"the lock file {self.path} is not a regular file (a pipe, socket or device); "
                                 "remove it and run again")
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                info = _holder(self._read(fd))
                os.close(fd)
                raise JobLockedError(f"another run is already {self.what} ({_describe(info)}; lock file {self.path}); "
                                     f"wait for it to finish or stop it, then {self.then}") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file after we opened it: lock the new one
                os.close(fd)
                continue
            previous = self._read(fd)
            if previous.strip():
                self.took_over = _describe(_holder(previous))
            self._write(fd)
            self._fd = fd
            return self
        raise JobLockedError(f"could not take the lock {self.path}: it keeps being replaced")

    def __exit__(self, *exc: Any) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still held: a waiter that opened the old file sees it is gone
        os.close(self._fd)
        self._fd = None

    @staticmethod
    def _read(fd: int) -> str:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 4096).decode("utf-8", "replace")

    @staticmethod
    def _write(fd: int) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)


_HELD: set[tuple[str, int]] = set()  # output locks this process holds, by path and thread


def lock_path(out: Path) -> Path:
    """The lock file of a job writing ``out``: ``tagged.parquet.lock``; for ``.`` or ``..``, the folder's own name
    (``report --out .`` stopped with pathlib's "PosixPath('.') has an empty name").

    >>> lock_path(Path("/data/reports/q3/..")).as_posix()
    '/data/reports.lock'
    """
    if out.name in ("", ".", ".."):
        out = Path(os.path.abspath(out))
        if not out.name:
            raise UsageError(f"{out} has no folder above it for the run's lock file (<out>.lock); choose a folder "
                             "inside it")
    return out.with_name(short_name(out.name, len(".lock")) + ".lock")  # a name of 252 bytes is a valid --out


@contextlib.contextmanager
def output_lock(out: str | os.PathLike, inputs: dict[str, Any] | None = None, *,
                name: str = "--out") -> Iterator[None]:
    """One run per output file or folder: two runs writing one ``--out`` at once (a themes folder, a report)
    committed their renames interleaved, leaving one run's ``themes.csv`` beside the other's assignments.

    ``inputs`` (``{"--in": path, ...}``) are the run's input paths: a lock over one of them is refused, since
    writing the lock would overwrite it. Folders made for the lock are removed when the run leaves nothing in
    them; an ``out`` under a file is left to the caller's own message (no lock is taken there). ``name`` is
    what the caller calls the output in messages (``--out``, ``out_dir``).

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "themes"
        >>> with output_lock(out):
        ...     (out.parent / "themes.lock").exists()
        True
    """
    path = lock_path(Path(out))
    key = (os.path.abspath(path), threading.get_ident())
    if key in _HELD:  # the CLI's lock around build_report's own: one run, already holding it
        yield
        return
    named = {k: v for k, v in (inputs or {}).items() if isinstance(v, (str, os.PathLike))}
    clash = [b for a, b in distinct_paths(**{"lock file": str(path)}, **named) if a == "lock file"]
    if clash or path.is_dir():
        raise UsageError(f"this run's lock file {path} is " + (f"the {clash[0]} file" if clash else "a folder")
                         + f"; choose another {name} (the lock is <out>.lock)")
    created = [d for d in [path.parent, *path.parent.parents] if not d.exists()]  # deepest first
    if not (created[-1].parent if created else path.parent).is_dir():
        yield
        return
    try:
        with JobLock(path, what=f"writing {out}", then="run again") as lock:
            if lock.took_over is not None:
                logging.getLogger(__name__).warning("took over the lock of an earlier run that ended without "
                                                    "releasing it (%s)", lock.took_over)
            _HELD.add(key)
            try:
                yield
            finally:
                _HELD.discard(key)
    finally:  # the folders the lock made for itself, when the run failed and left nothing in them
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
