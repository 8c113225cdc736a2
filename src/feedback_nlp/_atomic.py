"""Outputs that appear whole or not at all: temp file (or folder) beside the target, then ``os.replace``.

A command that fails half-way leaves no partial outputs: everything it writes goes to hidden temp paths in
the target's own folder (same file system, so the final rename is atomic) and is renamed into place only when
every output is ready (:class:`OutputSet`), or removed.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with OutputSet() as outs:
    ...     _ = outs.file(d / "a.txt").write_text("done")
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt']
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["OutputSet", "atomic_file", "create_private", "distinct_paths", "outside_saved_folders",
           "remove_stale_folders", "remove_stale_temps", "renaming_in", "replaceable_folder", "short_name", "writable_folder",
           "writable_target"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


_NAME_MAX = 255  # bytes in one file name (ext4, xfs, btrfs, tmpfs, APFS)


def short_name(name: str, extra: int) -> str:
    """``name``, or when ``extra`` more bytes (a temp prefix, a ``.lock``) would make it longer than a file name
    may be, a short stand-in that stays unique to it (a SHA-256 prefix) and keeps its extensions: a save to a
    folder of 250 characters failed with "File name too long" on its temp folder, not on the name given.

    >>> short_name("model", 14), short_name("x" * 250 + ".csv.gz", 14)
    ('model', '~c63674d4f568a8ed.csv.gz')
    """
    if len(os.fsencode(name)) + extra <= _NAME_MAX:
        return name
    ext = "".join(Path(name).suffixes[-2:])
    if len(os.fsencode(ext)) > 32 or not ext.isprintable():
        ext = ""
    return "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:16] + ext


_TEMP_EXTRA = len(".tmp-12345678-")


def _temp_tail(final: Path) -> str:
    return "-" + short_name(final.name, _TEMP_EXTRA)


def _temp_name(final: Path) -> Path:
    # the final name stays at the end so that the format implied by the extension (x.csv.gz) is kept
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=_temp_tail(final), dir=final.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
    return Path(tmp)


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temp files that a killed run (SIGKILL, a crash of the machine: nothing ran its clean-up) left
    beside the output ``path``, named as :func:`_temp_name` names them; returns them. A temp file that a living
    run still holds (:class:`OutputSet` holds an ``flock`` on each until it ends) is left alone."""
    final = Path(path)
    names = re.compile(r"\.tmp-[a-z0-9_]{8}" + re.escape(_temp_tail(final)))
    try:
        found = [p for p in final.parent.iterdir() if names.fullmatch(p.name)]
    except OSError:  # no folder yet: nothing left there
        return []
    removed = []
    for stale in found:
        fd = _held(stale, folder=False)
        if fd is None:
            continue
        try:
            stale.unlink(missing_ok=True)
            removed.append(stale)
        except OSError:  # a read-only folder: left for the next run
            pass
        finally:
            _unhold(fd)
    return removed


_NO_FD = -1  # where there is no flock (Windows): nothing is held, a temp folder is stale by its age alone
_STALE_WITHOUT_LOCKS_S = 24 * 3600


def _held(path: Path, *, folder: bool = True, new: bool = False) -> int | None:
    """An open descriptor of the temp folder (or file) ``path`` holding its ``flock``, or None when another open
    file holds it (a living run writing into it) or it is not a plain folder (file) of ours. The kernel drops the
    lock of a process that dies, SIGKILL included, so a temp whose lock can be taken has no living writer.
    ``new``: a temp this run just made, to hold."""
    kind = stat.S_ISDIR if folder else stat.S_ISREG
    if fcntl is None:  # pragma: no cover - Windows: no lock; a temp untouched for a day is stale
        return _by_age(path, kind, new)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK  # a pipe named like ours never blocks
    try:
        fd = os.open(path, flags | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not kind(st.st_mode) or st.st_uid != os.getuid():
            raise OSError  # another user's: never ours to remove
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            os.close(fd)  # a file system without flock (NFS without its lock service, some FUSE): by age
            return _by_age(path, kind, new)
        if os.lstat(path).st_ino != st.st_ino:  # replaced between the open and the lock
            raise OSError
    except OSError:
        os.close(fd)
        return None
    return fd


def _by_age(path: Path, kind: Any, new: bool) -> int | None:
    """Where no lock can be taken: a temp this run made is its own, another is stale once a day old."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    old = st.st_mtime < time.time() - _STALE_WITHOUT_LOCKS_S
    return _NO_FD if kind(st.st_mode) and (new or old) else None


@contextmanager
def renaming_in(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the ``flock`` of ``folder`` while outputs are renamed into it, waiting for any other run's renames
    there to end. Two saves of one model at once interleaved their renames (one moved the folder aside, the
    other renamed its own in: "Directory not empty", the first save's old model left hidden), and a load during
    a save's two renames found no folder at all: a load that finds none waits here, then looks again."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # not a folder this process may open: the renames say what is wrong
        yield
        return
    try:
        with contextlib.suppress(OSError):  # a file system without flock: renamed without it
            fcntl.flock(fd, fcntl.LOCK_EX)  # renames take milliseconds
        yield
    finally:
        os.close(fd)  # releases the lock


def _unhold(fd: int) -> None:
    if fd != _NO_FD:
        os.close(fd)


def _locked_temp_folder(final: Path, prefix: str) -> tuple[Path, int]:
    """A new empty temp folder beside ``final`` and a descriptor holding its lock until the commit (or the
    abort): :func:`remove_stale_folders` of another save, in this process or another, leaves it alone."""
    for _ in range(10):
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=_temp_tail(final), dir=final.parent))
        fd = _held(tmp, new=True)
        if fd is not None:
            return tmp, fd
        # another save's clean-up took it between the mkdtemp and the lock (it removes it): take a new one
    raise OSError(errno.EAGAIN, "could not lock a temp folder beside the output", str(final))


def remove_stale_folders(path: str | os.PathLike) -> list[Path]:
    """Clean up after a save of the folder ``path`` that was killed (SIGKILL, a crash of the machine): remove
    the hidden temp folders it left beside ``path`` (``.tmp-XXXXXXXX-<name>``, the new folder half written, and
    ``.old-XXXXXXXX-<name>``, the replaced folder moved aside), and when ``path`` itself is missing because the
    save was killed between moving the old folder aside and renaming the new one in, put the old one back.

    Only folders named exactly as a save names them, owned by this user, and not locked by a living save (each
    save holds an ``flock`` on its temp folders until it ends) are touched; returns the folders removed."""
    final = Path(path)
    if not final.name or final.name in (".", ".."):
        return []
    names = re.compile(r"\.(tmp|old)-[a-z0-9_]{8}" + re.escape(_temp_tail(final)))
    try:
        found = sorted((p for p in final.parent.iterdir() if names.fullmatch(p.name)),
                       key=lambda p: not p.name.startswith(".old-"))  # the old folder first: it may be put back
    except OSError:
        return []
    removed = []
    for stale in found:
        fd = _held(stale)
        if fd is None:
            continue
        try:
            kept = stale / "x"
            if stale.name.startswith(".old-") and not os.path.lexists(final) and kept.is_dir() \
                    and not kept.is_symlink():
                os.replace(kept, final)  # the save died between its two renames: the folder it replaced comes back
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
        except OSError:  # a read-only folder, a race with another clean-up: left for the next one
            pass
        finally:
            _unhold(fd)
    return removed


def create_private(path: str | os.PathLike) -> None:
    """Create the file ``path`` empty and readable by its owner only (0600), unless something is already there,
    whose permissions are left as they are: for the SQLite files that hold customer texts or their vectors (the
    backlog, the Quackback store, the embedding cache), which SQLite creates 0644, readable by every user of the
    machine. SQLite gives the ``-wal`` and ``-shm`` files beside it the same permissions."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:  # a file (or a link) already there: its mode is the user's choice
        return
    os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def replaceable_folder(path: str | os.PathLike) -> None:
    """Raise unless ``path`` may be replaced whole by a saved artefact: it does not exist, is empty, or is
    itself a saved feedback_nlp folder. ``--out ~/projects`` must never move a user's folder away."""
    final = Path(path)
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise FileExistsError(17, "exists and is not a folder that a saved model may replace", str(final))
    if final.is_dir() and any(final.iterdir()) and not ((final / "manifest.json").is_file()
                                                        or (final / "config.json").is_file()):
        raise FileExistsError(17, "folder exists, is not empty and is not a saved model; choose a new or empty "
                                  "folder", str(final))


def _keep_mode(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the permissions of the ``final`` it replaces: a ``chmod 600`` output of customer texts, or a
    model folder shared with a group, came back with the umask's defaults after every run."""
    try:
        st = os.lstat(final)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode) == tmp.is_dir() and (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        os.chmod(tmp, stat.S_IMODE(st.st_mode))


def _replace(tmp: Path, final: Path) -> None:
    if tmp.is_dir() and final.exists():
        replaceable_folder(final)
    _keep_mode(tmp, final)
    if tmp.is_dir() and final.is_dir() and not final.is_symlink():
        # a folder cannot replace a non-empty folder in one rename: move the old one aside first, into a folder
        # locked like the temp ones, so that a save killed between the two renames gets the old one put back
        # by the next save or load (remove_stale_folders) instead of leaving no folder at all
        old, fd = _locked_temp_folder(final, ".old-")
        try:
            os.replace(final, old / "x")
            try:
                os.replace(tmp, final)
            except BaseException:
                os.replace(old / "x", final)
                raise
            shutil.rmtree(old, ignore_errors=True)
        finally:
            _unhold(fd)
    else:
        os.replace(tmp, final)


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it is renamed to ``path``, on failure removed."""
    with OutputSet() as outs:
        yield outs.file(path)


@contextmanager
def _interrupt_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) or a SIGTERM until the block ends, then deliver it: the renames that commit a set of
    outputs take milliseconds, and cut between two of them they leave some outputs new and some old (the CLI
    turns SIGTERM into an exception like Ctrl-C's: a ``tag`` job stopped so had a new output beside the errors
    file of the run before)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread receives signals
        yield
        return
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig in held:
            signal.signal(sig, previous[sig])
        for signum in dict.fromkeys(received):  # to the handler that was there: KeyboardInterrupt by default for SIGINT
            signal.raise_signal(signum)


def _fsync(path: str | os.PathLike) -> None:
    """Flush the file or folder ``path`` to disk; an error of the disk (EIO, ENOSPC: a full disk that delayed
    allocation reports only now) is raised, a file system that cannot flush a folder (EINVAL) is let be."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # a link inside a folder, a folder that cannot be opened (Windows): nothing to flush here
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.EROFS):
            raise
    finally:
        os.close(fd)


def _sync(path: Path) -> None:
    """Flush ``path``, a file or a folder with everything in it. Renamed into place unflushed, a save that a power
    cut overtook could leave ``config.json`` or the weights empty under the final name, the model it replaced
    already removed (ext4 flushes a file renamed over another, not a folder's files)."""
    if path.is_dir() and not path.is_symlink():
        for root, _, files in os.walk(path):
            for name in files:
                _fsync(os.path.join(root, name))
            _fsync(root)
    else:
        _fsync(path)


class OutputSet:
    """Several outputs committed together: each is written to a temp path, all are renamed at the end.

    ``file(path)`` and ``folder(path)`` return the temp path to write; leaving the ``with`` block normally
    renames every temp path onto its target, an exception removes them all (and folders created for them).
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []
        self._created: list[Path] = []
        self._stale: list[Path] = []
        self._locks: list[int] = []  # descriptors holding the temp folders' locks until the set ends

    def _parent(self, final: Path) -> None:
        missing = [p for p in [final.parent, *final.parent.parents] if not p.exists()]
        final.parent.mkdir(parents=True, exist_ok=True)
        self._created.extend(missing)  # deepest first: removed in that order on failure

    def file(self, path: str | os.PathLike) -> Path:
        final = Path(path)
        self._parent(final)
        remove_stale_temps(final)  # what a run writing the same output, killed, left beside it
        for _ in range(10):
            tmp = _temp_name(final)
            fd = _held(tmp, folder=False, new=True)
            if fd is not None:
                break
            tmp.unlink(missing_ok=True)  # another run's clean-up took it before the lock: take a new one
        else:
            raise OSError(errno.EAGAIN, "could not lock a temp file beside the output", str(final))
        self._locks.append(fd)
        self._staged.append((tmp, final))
        return tmp

    def folder(self, path: str | os.PathLike) -> Path:
        final = Path(path)
        self._parent(final)
        remove_stale_folders(final)  # what a save of the same folder, killed, left beside it
        tmp, fd = _locked_temp_folder(final, ".tmp-")
        self._locks.append(fd)
        os.chmod(tmp, 0o777 & ~_umask())
        self._staged.append((tmp, final))
        return tmp

    def stale(self, path: str | os.PathLike) -> None:
        """Remove the file ``path`` with the commit: an output of an earlier run that this one does not write
        (a trends.csv of a run whose input had dates, beside the themes of one without) would pass for part of
        the new set. Nothing happens on failure, and a folder at ``path`` is left alone."""
        self._stale.append(Path(path))

    def commit(self) -> None:
        for tmp, _ in self._staged:  # on disk before renamed into place, so that a power cut never leaves an
            _sync(tmp)               # output or a saved model's files empty under their final names
        parents = sorted({os.path.abspath(final.parent) for _, final in self._staged})
        with _interrupt_deferred(), contextlib.ExitStack() as held:  # a Ctrl-C between two renames left a set
            for parent in parents:                                      # of new and old outputs
                held.enter_context(renaming_in(parent))
            for tmp, final in self._staged:
                _replace(tmp, final)
            for folder in parents:
                _fsync(folder)  # the renames themselves
            self._staged.clear()
            for path in self._stale:
                if path.is_file() or path.is_symlink():
                    path.unlink()
            self._stale.clear()
        self._release()

    def _release(self) -> None:
        for fd in self._locks:
            _unhold(fd)
        self._locks.clear()

    def abort(self) -> None:
        for tmp, _ in self._staged:
            _remove(tmp)
        self._staged.clear()
        self._release()
        for folder in self._created:
            with contextlib.suppress(OSError):  # only if still empty: never removes what the user put there
                folder.rmdir()

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            finals = [str(final) for _, final in self._staged]
            self.abort()
            if isinstance(exc, OSError) and exc.filename is None and exc.errno in _FULL and finals:
                # a failed write() names no file: "No space left on device" alone does not say which output
                raise OSError(exc.errno, exc.strerror, ", ".join(finals)) from exc


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _same(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links: two names, one file
    except OSError:
        return False


def distinct_paths(**paths: str | os.PathLike | None) -> list[tuple[str, str]]:
    """The pairs of roles (``in``, ``out``, ...) whose paths name the same file, following symlinks,
    relative paths and hard links. ``None`` paths are skipped.

    >>> distinct_paths(input="a.csv", output="./a.csv")
    [('input', 'output')]
    """
    items = [(role, Path(p)) for role, p in paths.items() if p is not None]
    return [(ra, rb) for i, (ra, a) in enumerate(items) for rb, b in items[i + 1:] if _same(a, b)]


def writable_target(path: str | os.PathLike) -> None:
    """Raise the ``OSError`` that writing ``path`` would raise, before any work: the nearest existing folder
    above it must be a writable folder, ``path`` itself, if it exists, must not be a folder, and it must not lie
    inside a folder feedback_nlp saved (a model), whose manifest it would break."""
    final = Path(path)
    if final.is_dir():
        raise IsADirectoryError(21, "is a folder, expected a file path", str(final))
    _writable(final)
    outside_saved_folders(final)


def _writable(final: Path) -> None:
    if final.exists() and not final.is_file():  # renaming onto /dev/null would replace the device itself
        raise FileExistsError(17, "exists and is not a regular file (a device, pipe or socket)", str(final))
    _writable_folder_at(final.parent)


def _writable_folder_at(parent: Path) -> None:
    """Raise unless the nearest existing folder at or above ``parent`` is a folder this process may write."""
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(20, "not a folder", str(parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(13, "permission denied (folder not writable)", str(parent))


def outside_saved_folders(final: Path) -> None:
    """Raise ``FileExistsError`` when ``final`` lies inside a folder feedback_nlp saved (a model)."""
    saved = _saved_folder_above(final)
    if saved is not None:  # `tag --out my-model/tagged.csv` wrote there, and my-model no longer loaded
        raise FileExistsError(17, f"is inside the saved feedback_nlp folder {saved}; a file written there fails "
                                  "its manifest at the next load: choose an output path outside it", str(final))


def _saved_folder_above(path: Path) -> Path | None:
    """The nearest folder above ``path`` that feedback_nlp saved (its ``manifest.json`` is ours; another tool's
    manifest.json, a web app's, says nothing), or None."""
    for folder in Path(os.path.abspath(path)).parents:
        manifest = folder / "manifest.json"
        try:
            if manifest.is_file() and manifest.stat().st_size < 1 << 24 and \
                    '"feedback_nlp.manifest"' in manifest.read_text(encoding="utf-8", errors="replace"):
                return folder
        except OSError:  # unreadable: not a folder we can tell anything about
            continue
    return None


def not_a_saved_folder(path: str | os.PathLike) -> None:
    """Raise when ``path`` is a saved feedback_nlp folder (it holds ``manifest.json``): files written into it
    would fail its checksum at the next load (``themes --out my-model`` broke the tag model)."""
    if (Path(path) / "manifest.json").is_file():
        raise FileExistsError(17, "is a saved feedback_nlp model folder; files written into it would break its "
                                  "manifest: choose another output folder", str(path))


def writable_folder(path: str | os.PathLike) -> None:
    """Like :func:`writable_target` for an output folder: it may exist (as a folder) or be created."""
    final = Path(path)
    if final.exists() and not final.is_dir():
        raise NotADirectoryError(20, "exists and is not a folder", str(final))
    # the folder itself (or the nearest one above it that exists) must take new files: probing a file name
    # inside it failed on whatever the folder held under that name (a subfolder "x" refused the whole run)
    _writable_folder_at(final)
    outside_saved_folders(final)  # the folder itself may be a saved model that a new one replaces
