"""Shared pieces of saving and loading: JSON configs, a required ``manifest.json`` with the SHA-256 of every
file of a saved folder (the config included), no pickle anywhere, and the folder where feedback_nlp keeps what
it derives on a machine (ONNX exports, backend measurements).

Manifest keys are plain relative paths to regular files inside the folder: ``..``, absolute paths, devices,
pipes and symbolic links are refused before any file is opened, so a hostile manifest can neither probe
the file system nor hang a load on ``/dev/zero``.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "weights.npz").write_bytes(b"...")
    >>> write_config(d, "demo", ["weights.npz"], answer=42)["answer"]
    42
    >>> read_config(d, "demo")["answer"]
    42
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

import numpy as np

from . import _config
from ._atomic import OutputSet, remove_stale_folders, renaming_in
from .errors import (
    FeedbackNLPError,
    IntegrityError,
    InvalidInputError,
    ModelMismatchError,
    ModelNotFoundError,
    quoted,
)


def feedback_home() -> Path:
    """The per-machine folder (``FEEDBACK_NLP_HOME``); see :func:`feedback_nlp._config.home`."""
    return _config.home()


MANIFEST = "manifest.json"
_MANIFEST_FORMAT = "feedback_nlp.manifest"
_MANIFEST_VERSION = 1


def sha256_file(path: Path) -> str:
    """SHA-256 of a regular file, opened without following a symlink (a swapped-in link is refused)."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):  # a FIFO or device swapped in after the check
            raise IntegrityError(f"{path} is not a regular file")
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _safe_key(folder: Path, key: object) -> Path:
    """The file a manifest key names, if the key is a plain relative path to a regular file inside
    ``folder`` (no ``..``, no absolute path, no drive, no backslash, no symlink anywhere on the way)."""
    if not isinstance(key, str) or not key or "\\" in key or "\x00" in key or ":" in key:
        raise IntegrityError(f"{folder / MANIFEST} lists an unsafe path {quoted(key)}: only plain relative paths inside "
                             "the folder are allowed")
    parts = PurePosixPath(key).parts
    if PurePosixPath(key).is_absolute() or any(p in ("..", ".", "") for p in parts) or key != "/".join(parts):
        raise IntegrityError(f"{folder / MANIFEST} lists an unsafe path {quoted(key)}: only plain relative paths inside "
                             "the folder are allowed")
    path = folder
    for i, part in enumerate(parts):
        path = path / part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            raise IntegrityError(f"{path} is missing (listed in {MANIFEST})") from None
        if stat.S_ISLNK(st.st_mode):
            raise IntegrityError(f"{path} is a symbolic link; saved folders hold regular files only")
        if i < len(parts) - 1 and not stat.S_ISDIR(st.st_mode):
            raise IntegrityError(f"{path} is not a folder")
    if not stat.S_ISREG(st.st_mode):
        raise IntegrityError(f"{path} is not a regular file (a device, pipe or folder); refusing to read it")
    return path


def _folder_files(folder: Path) -> list[str]:
    """Every file in ``folder`` (recursively) as a relative POSIX path, except the manifest itself."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if (p.is_file() or p.is_symlink()) and p.relative_to(folder).as_posix() != MANIFEST)


# manifest.json and config.json are read whole before anything is checked: a manifest of a few thousand files
# is ~100 kB, and the largest config (a taxonomy of 1,000 tags with examples) about 1 MB
_MAX_JSON_BYTES = 16 << 20


def _small_enough(path: Path, size: int) -> None:
    """IntegrityError when ``path`` is larger than any manifest or config a save writes (a 2 GB config.json was
    read into memory whole, and parsed, before the load could say anything)."""
    if size > _MAX_JSON_BYTES:
        raise IntegrityError(f"{path} is {size / 1e6:.0f} MB; a saved folder's {path.name} is at most "
                             f"{_MAX_JSON_BYTES >> 20} MiB: not written by a save, refusing to read it")


def read_npz(path: Path) -> dict[str, Any]:
    """The arrays of a saved ``.npz``, read without pickle (``allow_pickle=False``) once every member is checked
    to be stored uncompressed, as ``np.savez`` writes it, and to hold exactly the bytes its header declares.

    A deflated member of zeros made a 1 MB weights file into 1 GB of memory (a few such, a service killed for
    memory), and a header declaring 10^12 floats was a bare MemoryError: now an IntegrityError naming the
    member, so an array never takes more memory than its bytes on disk.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED:
                    raise IntegrityError(f"{path}: {info.filename} is compressed; a save stores arrays uncompressed "
                                         "(np.savez), refusing to expand it")
                with archive.open(info) as member:
                    _check_npy(member, info.file_size, f"{path}: {info.filename}")
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise IntegrityError(f"{path} is not a readable .npz archive ({type(exc).__name__}: {exc})") from exc
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def read_npy(path: Path) -> np.ndarray:
    """The array of a saved ``.npy``, without pickle, once its header is checked against its size (see
    :func:`read_npz`)."""
    with open(path, "rb") as fh:
        _check_npy(fh, os.fstat(fh.fileno()).st_size, str(path))
    return np.load(path, allow_pickle=False)


def _check_npy(fh: Any, size: int, where: str) -> None:
    """IntegrityError unless the ``.npy`` stream ``fh`` (``size`` bytes) is a plain array whose header declares
    exactly the bytes that follow it."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = npy.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = npy.read_array_header_2_0(fh)
        else:
            raise ValueError(f"format version {version}")
    except (ValueError, EOFError, SyntaxError) as exc:
        raise IntegrityError(f"{where} is not an array a save writes ({exc})") from None
    if dtype.hasobject:
        raise IntegrityError(f"{where} holds Python objects (a pickle); refusing to read it")
    declared = math.prod(shape) * dtype.itemsize
    if fh.tell() + declared != size:
        raise IntegrityError(f"{where} declares {declared} bytes of {dtype} {tuple(shape)} but holds "
                             f"{size - fh.tell()}; refusing to read it")


def write_manifest(folder: str | os.PathLike) -> dict[str, str]:
    """Write ``manifest.json``: the SHA-256 of every file in the folder, ``config.json`` included.

    Call it last, after every other file is written (savers that add a file afterwards call it again).
    """
    folder = Path(folder)
    files = {name: sha256_file(_safe_key(folder, name)) for name in _folder_files(folder)}
    manifest = {"format": _MANIFEST_FORMAT, "version": _MANIFEST_VERSION, "files": files}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)
    return files


def verify_manifest(folder: str | os.PathLike) -> dict[str, str]:
    """Check every file of a saved folder against ``manifest.json`` (required); returns its entries.

    Raises :class:`IntegrityError` naming the file when the manifest is missing or malformed, a key is not
    a plain relative path to a regular file inside the folder, a listed file is missing or differs, or the
    folder holds a file the manifest does not cover.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise IntegrityError(f"{folder} has no {MANIFEST}: it was not saved by this feedback_nlp, or the manifest "
                             "was removed; save the model again") from None
    if not stat.S_ISREG(st.st_mode):
        raise IntegrityError(f"{path} is not a regular file")
    _small_enough(path, st.st_size)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # [[[[... nested past the parser's depth
        raise IntegrityError(f"{path} is not valid JSON: {exc}") from exc
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (not isinstance(manifest, dict) or manifest.get("format") != _MANIFEST_FORMAT
            or not isinstance(files, dict) or "config.json" not in files):
        raise IntegrityError(f"{path} is not a feedback_nlp manifest covering config.json")
    version = manifest.get("version", 0)
    if not isinstance(version, int) or isinstance(version, bool):  # "2" or [1] was a bare TypeError
        raise IntegrityError(f"{path} has the manifest version {quoted(version)}, not a whole number")
    if version > _MANIFEST_VERSION:
        raise IntegrityError(f"{path} was written by a newer feedback_nlp (manifest version {version})")
    checked = {name: _safe_key(folder, name) for name in files}  # every key is checked before any file is read
    extra = sorted(set(_folder_files(folder)) - set(files))
    if extra:
        raise IntegrityError(f"{folder / extra[0]} is not covered by {MANIFEST} (added after saving?); remove it "
                             "or save the model again")
    for name, f in checked.items():
        digest = files[name]
        if not isinstance(digest, str) or sha256_file(f) != digest:
            raise IntegrityError(f"{f} does not match its checksum in {MANIFEST}: modified after saving")
    return files


def manifest_digest(folder: str | os.PathLike) -> str | None:
    """SHA-256 of a saved folder's manifest: changes whenever any file of the folder changes."""
    path = Path(folder) / MANIFEST
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def prepare_folder(path: str | os.PathLike) -> Path:
    """The folder to save an artefact into, checked but not created (:func:`saving` writes it whole).

    Refuses a path that is a file, a folder inside another saved folder (whose manifest it would break), and a
    folder that holds other things than an artefact feedback_nlp saved: a save replaces the folder whole, so
    ``save(".")`` in a project would have removed the project. A link to a folder names that folder.
    """
    if not isinstance(path, (str, os.PathLike)) or isinstance(os.fspath(path), bytes) or not str(path).strip():
        raise InvalidInputError(f"the folder to save into must be a path (a str or Path), got {path!r:.80}")
    folder = Path(path).expanduser()  # "~/models/x" is the home folder, not a folder named "~" here
    _creatable(folder)
    if folder.is_symlink() and not folder.exists():
        raise InvalidInputError(f"cannot save into {folder}: it is a symbolic link to {os.readlink(folder)}, which "
                                "does not exist; create that folder or give another path")
    try:  # one stat: a save of it by another process, between its renames, made exists() and is_dir() disagree
        is_file = not stat.S_ISDIR(os.stat(folder).st_mode)
    except OSError:
        is_file = False
    if is_file:
        raise InvalidInputError(f"cannot save into {folder}: it is a file, not a folder")
    if folder.is_symlink():  # models/current -> models/v3: the save replaces v3, the link stays
        folder = folder.resolve()
    where = Path(os.path.abspath(folder))  # "." has no parent to stage the new folder beside
    if where == Path.cwd() or where in Path.cwd().parents:
        raise InvalidInputError(f"cannot save into {where}: it is the current folder (or holds it), which a save "
                                "replaces whole; give a folder below it, such as ./model")
    for parent in folder.resolve().parents:  # a save inside another saved folder breaks that one's manifest
        if (parent / MANIFEST).is_file() and (parent / "config.json").is_file():
            raise InvalidInputError(f"cannot save into {folder}: it is inside the saved folder {parent}, whose "
                                    f"{MANIFEST} would no longer cover its files (it would stop loading); choose a "
                                    "folder outside it")
    if _foreign(folder):
        raise InvalidInputError(f"cannot save into {folder}: the folder holds other files; give a new or empty "
                                "folder (or a folder saved before, to replace it)")
    return folder


def _foreign(folder: Path) -> bool:
    """Whether ``folder`` holds files and is not a folder feedback_nlp saved. Checked while no save renames
    anything in its parent folder: a save of the same folder by another process, between its two renames, made
    the folder vanish under ``iterdir`` (FileNotFoundError) or lose its manifest for an instant ("holds other
    files"), and a concurrent save failed."""
    with renaming_in(os.path.dirname(os.path.abspath(folder))):
        try:
            return folder.is_dir() and any(folder.iterdir()) and not _saved_by_us(folder)
        except FileNotFoundError:  # gone meanwhile (without flock, where renames are not held off)
            return False


def _creatable(folder: Path) -> None:
    """InvalidInputError when no folder can be made at ``folder``: a file on the way (was "File exists: 'notes.txt'"
    for ``save("notes.txt/model")``, as if the model folder existed) or a name longer than a file name may be."""
    long = next((part for part in folder.parts if len(os.fsencode(part)) > 255), None)
    if long is not None:
        raise InvalidInputError(f"cannot save into {str(folder):.200}: the name {long:.40}... is "
                                f"{len(os.fsencode(long))} bytes long, and a file name is at most 255")
    for above in folder.parents:
        if above.is_dir():
            return
        if os.path.lexists(above):
            what = (f"a symbolic link to {os.readlink(above)}, which does not exist" if above.is_symlink()
                    else "a file, not a folder")
            raise InvalidInputError(f"cannot save into {folder}: {above} is {what}")


def _saved_by_us(folder: Path) -> bool:
    """Whether ``folder`` holds a ``manifest.json`` that feedback_nlp wrote (another tool's says nothing)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == _MANIFEST_FORMAT


@contextmanager
def saving(folder: Path) -> Iterator[Path]:
    """Yield an empty temp folder beside ``folder`` (from :func:`prepare_folder`) to write a saved artefact into;
    when the block ends, it replaces ``folder`` whole, in one rename. An exception (a crash, a Ctrl-C, a full
    disk) removes it and leaves ``folder`` as it was: a save written into the folder itself, interrupted after
    the weights, left a folder that loaded the new weights under the card of the model saved there before, and
    a save over another model kept that one's files beside its own."""
    with OutputSet() as outs:
        yield outs.folder(folder)


def finite_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None: json wrote them as ``NaN``/``Infinity``, which is not
    JSON, and strict readers (JavaScript, Go, jq) refused the whole config. NumPy numbers become the Python
    numbers they hold.

    >>> finite_json({"f1": float("nan"), "runs": [1.0, float("inf")]})
    {'f1': None, 'runs': [1.0, None]}
    """
    if isinstance(value, np.generic) and not isinstance(value, (np.datetime64, np.timedelta64)):
        value = value.item()  # np.int64(3) was written as the string "3" (json's default=str): the load refused it
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def write_config(folder: Path, fmt: str, files: Iterable[str] = (), **fields: Any) -> dict[str, Any]:
    """Write ``config.json`` (the format name and the fields), then the manifest of every file in the folder.

    ``files`` names the data files the loader reads; each must exist (the manifest covers them and the rest).
    """
    folder = Path(folder)
    for name in files:
        _safe_key(folder, name)
    config = {"format": fmt, **fields}
    text = json.dumps(finite_json(config), indent=2, ensure_ascii=False, default=str, allow_nan=False)
    (folder / "config.json").write_text(text, encoding="utf-8")
    write_manifest(folder)
    return config


def read_config(folder: Path, fmt: str) -> dict[str, Any]:
    """Verify the folder against its manifest, then read ``config.json`` and check its format name
    (IntegrityError on any problem, naming the file; ModelNotFoundError when there is no such folder)."""
    folder = Path(folder)
    with suppress(OSError):  # a save of this folder killed half-way: its temp folders go, a folder it moved aside
        remove_stale_folders(folder.resolve() if folder.is_symlink() else folder)  # and did not put back returns
    for attempt in range(5):
        before = _identity(folder)
        try:
            return _read_config(folder, fmt)
        except (IntegrityError, ModelNotFoundError, OSError):
            # a save of the folder (another process) renamed a new one in while it was read: a manifest of one
            # save and a config.json of the next read "does not match its checksum: modified after saving"
            if attempt == 4 or _identity(folder) == before:
                raise
    raise AssertionError("unreachable")


_T = TypeVar("_T")


def read_saved(folder: Path, fmt: str, read: Callable[[dict[str, Any]], _T]) -> tuple[dict[str, Any], _T]:
    """``config.json`` (checked as :func:`read_config` checks it) and what ``read(config)`` reads of the folder's
    other files, both of one save. The files are read holding the lock that a save of the folder takes for its
    renames (:func:`~feedback_nlp._atomic.renaming_in`), once the folder is seen to be the one whose manifest was
    checked; a folder replaced meanwhile is read again. Read after ``read_config``, a save of the folder by another
    process in between gave one save's config and ids with the next one's vectors, without a word."""
    parent = os.path.dirname(os.path.abspath(folder.resolve() if folder.is_symlink() else folder))
    for _ in range(5):
        before = _identity(folder)
        config = read_config(folder, fmt)
        try:
            with renaming_in(parent):  # no save renames in the parent meanwhile: the folder stays the checked one
                same = before is not None and _identity(folder) == before
                data = read(config) if same else None
        except OSError:  # a file gone under it: the old folder of a save, removed (where there is no flock)
            if _identity(folder) == before:
                raise
            continue
        if same and _identity(folder) == before:  # also where renaming_in could take no lock
            return config, data  # type: ignore[return-value]
    raise IntegrityError(f"{folder} was replaced by another save each of 5 times it was read; load it again once "
                         "the saves end")


def _identity(folder: Path) -> tuple[int, int] | None:
    """Which folder is at ``folder`` now: its inode, and its change time (an inode number is reused)."""
    try:
        st = os.stat(folder)
    except OSError:
        return None
    return st.st_ino, st.st_ctime_ns


def _read_config(folder: Path, fmt: str) -> dict[str, Any]:
    if not folder.exists() and not folder.is_symlink():
        with suppress(OSError), renaming_in(os.path.dirname(os.path.abspath(folder.resolve()))):
            pass  # a save of it between its two renames (the old folder moved aside, the new one not yet in): wait
    if not folder.exists() and not folder.is_symlink():  # a name with a typo: not found, as TagClassifier.load says
        raise ModelNotFoundError(f"no saved {fmt} at {folder}: no such folder")
    if not folder.is_dir():
        raise IntegrityError(f"{folder} is not a folder: not a saved {fmt}")
    if not (folder / "config.json").exists() and not (folder / MANIFEST).exists():
        raise IntegrityError(f"{folder} has no config.json: not a saved {fmt}")
    verify_manifest(folder)
    _small_enough(folder / "config.json", (folder / "config.json").stat().st_size)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:
        raise IntegrityError(f"{folder / 'config.json'} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != fmt:
        found = config.get("format") if isinstance(config, dict) else None
        kind = found.removeprefix("feedback_nlp.") if isinstance(found, str) else ""
        hint = f": it holds a saved {kind}; load it with {kind}.load" if kind != found and kind.isidentifier() else ""
        raise IntegrityError(f"{folder} is not a saved {fmt}{hint}")
    return config


@contextmanager
def loading(folder: str | os.PathLike) -> Iterator[None]:
    """Turn a saved folder whose files pass the manifest but do not hold what a save writes (the manifest
    was recomputed after an edit, or a save of a buggy version) into one IntegrityError naming the folder,
    instead of a KeyError, a numpy or a JSON error from deep inside a load.

    >>> with loading("m"):  # doctest: +ELLIPSIS
    ...     {}["weights"]
    Traceback (most recent call last):
    feedback_nlp.errors.IntegrityError: m holds files that pass manifest.json but not what a save writes (KeyError: 'weights'); ...
    """
    try:
        yield
    except FeedbackNLPError:
        raise
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError, EOFError,
            zipfile.BadZipFile) as exc:  # the last three: JSON nested too deep, an empty or a cut .npz
        raise IntegrityError(f"{folder} holds files that pass manifest.json but not what a save writes "
                             f"({type(exc).__name__}: {exc}); save it again") from exc


def check_embedder(saved_model_id: str | None, embedder: Any, what: str) -> None:
    """Raise ModelMismatchError when ``embedder`` is not the embedding model ``what`` was built with."""
    if embedder is None or not saved_model_id:
        return
    saved = saved_model_id.split(":", 1)[0]
    base = getattr(embedder, "base_model_id", None)
    if not isinstance(base, str):  # an object with encode() alone (as the estimators accept) was an AttributeError
        named = getattr(embedder, "model_id", None)
        base = named.split(":", 1)[0] if isinstance(named, str) else None
    if base is None:
        raise ModelMismatchError(f"{what} was built on embeddings of {saved}, and the embedder names no model (no "
                                 f"model_id) to check it against; give it model_id = {saved!r} if it is that model")
    if base != saved:
        raise ModelMismatchError(f"{what} was built on embeddings of {saved}, but the embedder is "
                                 f"{base}; pass the matching embedder")
