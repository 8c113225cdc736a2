"""Secrets (the API key, the webhook signing secret) read from a file or an environment variable.

Never from a command-line value: arguments are visible to every user of the machine through ``ps``.
The value is wrapped in :class:`Secret`, whose ``repr``/``str`` hide it, so that it cannot end up in a log
line or a traceback by accident.

Example:
    >>> s = Secret("qb_abc")
    >>> s, str(s), s.reveal()
    (Secret('***'), '***', 'qb_abc')
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from ._errors import QuackbackError

__all__ = ["Secret", "read_secret"]

logger = logging.getLogger(__name__)


class Secret:
    """A string that does not print itself; call :meth:`reveal` where the value is really needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_MAX_SECRET_BYTES = 64 * 1024  # a key or signing secret is a line of text


def read_secret(file: str | os.PathLike | None = None, env: str | None = None, *, what: str = "secret") -> Secret:
    """The secret from ``file`` (its one line, surrounding whitespace removed) or else from ``$env``.

    Raises :class:`QuackbackError` naming the file or variable (never the value) when neither gives one.
    A file readable by other users is accepted with a warning, as ssh does for keys.
    """
    if file is not None:
        path = Path(file)
        try:  # at most 64 KB: /dev/zero was read until memory ran out (a pipe such as <(echo key) still works)
            with open(path, "rb") as fh:
                data = fh.read(_MAX_SECRET_BYTES + 1)
            if len(data) > _MAX_SECRET_BYTES:
                raise QuackbackError(f"the {what} file {path} is over {_MAX_SECRET_BYTES // 1024} KB: not a key file")
            # utf-8-sig: Notepad's byte-order mark was kept as part of the value, so every webhook signature was
            # refused as a mismatch and the API key could not be sent
            raw = data.decode("utf-8-sig")
        except FileNotFoundError:
            raise QuackbackError(f"{what} file not found: {path}") from None
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
            raise QuackbackError(f"cannot read the {what} file {path}: {type(exc).__name__}") from None
        lines = [line for line in raw.strip().splitlines() if line.strip()]
        value = lines[0].strip() if lines else ""
        if not value:
            raise QuackbackError(f"the {what} file {path} is empty")
        if len(lines) > 1:  # a .env or config file given by mistake: its first line would be sent as the key
            raise QuackbackError(f"the {what} file {path} holds {len(lines)} lines; a {what} file holds the "
                                 f"{what} alone, on one line")
        if path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH):
            logger.warning("the %s file %s is readable by other users; chmod 600 it", what, path)
        return Secret(value)
    if env is not None:
        value = os.environ.get(env, "").strip()
        if value:
            return Secret(value)
        raise QuackbackError(f"no {what}: give a file or set ${env}")
    raise QuackbackError(f"no {what}: give a file")
