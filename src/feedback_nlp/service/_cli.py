"""The ``serve`` and ``keys`` sub-commands; :func:`add_parsers` registers them on the main CLI."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from .._argtypes import port, seconds
from ..errors import InvalidInputError, UsageError, quoted

__all__ = ["add_parsers"]

log = logging.getLogger("feedback_nlp.service")


def _models(values: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = value.rstrip("/").rsplit("/", 1)[-1], value
        if not name or not path:
            raise InvalidInputError(f"--model takes DIR or NAME=DIR, got {quoted(value)}")
        if name in out:
            raise InvalidInputError(f"two models named {quoted(name)}; name them with NAME=DIR")
        out[name] = path
    return out


def _extension(spec: str) -> Any:
    module, sep, attr = spec.partition(":")
    if not sep:
        raise InvalidInputError(f"--extension takes MODULE:FUNCTION, got {quoted(spec)}")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"cannot load extension {quoted(spec)}: {type(exc).__name__}: {exc}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from .._optional import require

    uvicorn = require("uvicorn", "serve", "feedback-nlp serve")
    from . import ServiceConfig, ServiceState, create_app
    from ._config import is_loopback

    config = ServiceConfig(
        data_dir=args.data, store=args.store, models=_models(args.model), themes=args.themes,
        sentiment=None if args.sentiment in ("", "none") else args.sentiment,
        embedding_model=args.embedding_model, backend=args.backend, max_body_bytes=args.max_body_bytes,
        max_items=args.max_items, max_text_chars=args.max_text_chars, max_k=args.max_k, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, cors_origins=tuple(args.cors_origin or ()),
        keep_metadata=tuple(args.keep_metadata or ()))
    if not is_loopback(args.host):
        log.warning("listening on %s: reachable from other machines; API keys are the only protection, use TLS "
                    "in front of it", args.host)
    state = ServiceState(config)
    from ..integrations.quackback._service import serve_extensions

    app = create_app(config, extensions=[_extension(s) for s in args.extension or []] + serve_extensions(args), state=state,
                     exit_on_load_error=True)
    server = uvicorn.Server(uvicorn.Config(
        app, host=args.host, port=args.port, access_log=False, server_header=False, lifespan="on",
        log_level="info" if args.verbose else "warning", timeout_graceful_shutdown=args.graceful_timeout))
    # uvicorn re-raises the signal that stopped it once it has drained; a no-op handler makes a requested
    # shutdown (SIGTERM) end with exit code 0 instead of "killed by signal 15"
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run()
    if state.load_error:
        print(f"error: {state.load_error}", file=sys.stderr)
        return 2
    return 0


def _open(args: argparse.Namespace):
    from ._store import open_store

    return open_store(args.data, args.store)


def cmd_keys(args: argparse.Namespace) -> dict:
    """Create, list or revoke a key. The key and the list go to stdout (with ``--json``: inside the one JSON
    object, which the CLI prints); the notes go to stderr, none with ``--quiet`` (a new key is printed even then:
    it is shown only once)."""
    from ._keys import create_key

    _check_key_store(args)
    as_json, quiet = getattr(args, "json", False), getattr(args, "quiet", False)

    def note(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr)

    store = _open(args)
    try:
        if args.keys_command == "create":
            token, record = create_key(store, args.name, args.scope)
            if not as_json:
                print(token)
            note(f"created {record.key_id} ({record.scope}) for {record.name}; the key is shown only once")
            return {"key": token, "key_id": record.key_id, "scope": record.scope, "name": record.name}
        if args.keys_command == "list":
            keys = store.list_keys()
            if not as_json:
                for k in keys:
                    print(f"{k.key_id}\t{k.scope}\t{'revoked' if k.revoked else 'active'}\t{k.created_at}\t{k.name}")
            return {"keys": [{"key_id": k.key_id, "scope": k.scope, "status": "revoked" if k.revoked else "active",
                              "created_at": k.created_at, "name": k.name} for k in keys]}
        if not store.revoke_key(args.key_id):
            raise InvalidInputError(f"no key {quoted(args.key_id)}")
        note(f"revoked {args.key_id}")
        return {"revoked": args.key_id}
    finally:
        store.close()


def _check_key_store(args: argparse.Namespace) -> None:
    """``keys list`` / ``revoke`` read a store that must be there: a mistyped ``--data`` created an empty store
    in a new folder and listed nothing, exit 0 (``keys create`` and ``serve`` make the store)."""
    if args.store or args.keys_command == "create":
        return
    from ._sqlite import SQLiteStore

    if not (Path(args.data) / SQLiteStore.filename).is_file():
        raise UsageError(f"--data {args.data}: no key store there (no {SQLiteStore.filename}); check the folder "
                         "(`keys create` and `serve` make the store)")


def _store_url(text: str) -> str:
    """``--store``: the URL as given, with a warning when it holds a password, which every user of the machine
    reads in the process list (``ps``); libpq takes it from ``$PGPASSWORD`` or ``~/.pgpass`` instead."""
    userinfo = text.partition("://")[2].rpartition("@")[0]
    if userinfo.partition(":")[2]:
        log.warning("the --store URL holds a password, which any user of this machine can read with ps: leave it "
                    "out of the URL and give it in $PGPASSWORD or ~/.pgpass")
    return text


def _store_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="feedback-nlp-data", help="folder of the SQLite store (default: %(default)s)")
    p.add_argument("--store", default=None, type=_store_url,
                   help="postgresql://... URL instead of SQLite (pgvector); the password in $PGPASSWORD or ~/.pgpass")


def add_parsers(sub: Any, common: list[argparse.ArgumentParser] | None = None) -> None:
    """Register ``serve`` and ``keys`` on the CLI's sub-parsers (fastapi/uvicorn are imported only when run);
    ``common``: parent parsers of the CLI's flags (``--json``, ``-q``, ...) that ``keys`` takes after its name."""
    from ..backends import BACKENDS
    from ._config import ServiceConfig

    d = ServiceConfig.__dataclass_fields__
    p = sub.add_parser("serve", help="the HTTP API (tag, duplicates, backlog, themes, scores) on a local port")
    p.add_argument("--model", action="append", metavar="[NAME=]DIR",
                   help="tag model folder or bundled name, repeatable; the first is the default "
                        "(default: the bundled request-type model)")
    p.add_argument("--themes", default=None, metavar="DIR", help="a saved ThemeModel for /v1/themes")
    p.add_argument("--sentiment", default="sentiment", metavar="DIR",
                   help="model of /v1/sentiment (default: the bundled one; 'none' turns it off)")
    _store_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    p.add_argument("--port", type=port, default=8080, help="TCP port, 0-65535 (0: any free port) (default: 8080)")
    p.add_argument("--embedding-model", default=None, help="embedding model folder or name (default: bundled MiniLM)")
    p.add_argument("--backend", default=None, choices=list(BACKENDS), help="embedding backend (default: auto)")
    for name in ("max_body_bytes", "max_items", "max_text_chars", "max_k", "max_batch"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=d[name].default, help="(default: %(default)s)")
    p.add_argument("--max-wait-ms", type=float, default=d["max_wait_ms"].default,
                   help="batching window under concurrent load (default: %(default)s)")
    p.add_argument("--cors-origin", action="append", metavar="ORIGIN", help="allow browser calls from ORIGIN "
                   "(repeatable; default: no CORS)")
    p.add_argument("--keep-metadata", action="append", metavar="FIELD",
                   help="a backlog metadata field stored as sent (repeatable); other string values are PII-redacted")
    p.add_argument("--extension", action="append", metavar="MODULE:FUNCTION",
                   help="call FUNCTION(app, state) at start-up to mount an integration's routes")
    p.add_argument("--graceful-timeout", type=seconds, default=30.0,
                   help="seconds in-flight requests get to finish on SIGTERM (default: %(default)s)")
    from ..integrations.quackback._setup import add_quackback_options

    add_quackback_options(p)  # --quackback-secret-file etc.: mounts POST /v1/integrations/quackback/webhook
    p.set_defaults(func=cmd_serve)

    k = sub.add_parser("keys", help="create, list or revoke the API keys of `serve`")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    c = ksub.add_parser("create", help="create a key and print it (once)", parents=common or [])
    c.add_argument("--name", required=True, help="who or what uses the key")
    c.add_argument("--scope", default="tag", choices=["tag", "write", "admin"],
                   help="tag: read endpoints; write: also the backlog; admin: also /metrics (default: tag)")
    _store_args(c)
    c.set_defaults(func=cmd_keys)
    ls = ksub.add_parser("list", help="key ids, scopes and names (never the keys)", parents=common or [])
    _store_args(ls)
    ls.set_defaults(func=cmd_keys)
    r = ksub.add_parser("revoke", help="revoke a key by its id", parents=common or [])
    r.add_argument("key_id")
    _store_args(r)
    r.set_defaults(func=cmd_keys)
