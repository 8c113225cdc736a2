"""``feedback-nlp quackback …``: pull a portal into a records file, export what the webhook has seen, or serve
only the webhook.

Registered by :func:`add_quackback_parser`; the API key comes from ``--key-file`` or ``$QUACKBACK_API_KEY``,
never from a command-line value (``ps`` shows arguments to every user).
"""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_quackback_parser"]

from ._client import DEFAULT_MAX_POSTS
from ._setup import KEY_ENV, STORE_FILE, add_quackback_options


def _output_file(text: str) -> str:
    """An output path whose name says its format: checked before the pull (which may take many requests)."""
    from ...errors import FeedbackNLPError
    from ...records import table_format

    try:
        table_format(text)
    except FeedbackNLPError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive_int(text: str) -> int:
    """``--max-posts``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _port(text: str) -> int:
    """``--port``: checked before the model loads (70000 failed after it, as an 'unexpected OverflowError')."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port in 0-65535, got {port}")
    return port


def _say(args: argparse.Namespace, line: str) -> None:
    """Human output, unless the main CLI was asked for --json (one JSON object) or --quiet."""
    if not (getattr(args, "json", False) or getattr(args, "quiet", False)):
        print(line)


def cmd_pull(args: argparse.Namespace) -> dict:
    from ..._atomic import distinct_paths, writable_target
    from ...errors import UsageError
    from ...records import write_table
    from ._client import QuackbackClient
    from ._pull import pull_posts
    from ._secrets import read_secret

    writable_target(args.out)  # before the pull, which may take thousands of requests, not after it
    if args.key_file and distinct_paths(key_file=args.key_file, out=args.out):  # the posts would replace the key
        raise UsageError(f"--out ({args.out}) is the --key-file; choose another output path")
    client = QuackbackClient(args.url, read_secret(args.key_file, KEY_ENV, what="API key"), allow_insecure=args.insecure)
    _check_tag_names(client, args.out)
    filters = {"boardId": args.board_id, "status": args.status, "dateFrom": args.since, "sort": "oldest"}
    res = pull_posts(client, limit=args.limit, max_posts=args.max_posts,
                     **{k: v for k, v in filters.items() if v is not None})
    records, untagged = res.records, 0
    if args.tagged_only:  # training data: every row needs at least one tag
        keep = records["tags"].map(len) > 0
        records, untagged = records[keep], int((~keep).sum())
    write_table(records, args.out)
    _say(args, f"wrote {len(records)} posts to {args.out} ({res.skipped_deleted} deleted posts skipped"
               + (f", {untagged} untagged posts left out" if args.tagged_only else "")
               + (f", {res.skipped_malformed} malformed entries left out" if res.skipped_malformed else "")
               + (f", {res.skipped_repeated} repeated posts kept once" if res.skipped_repeated else "")
               + (f", {res.skipped_filtered} posts outside --board-id/--since left out (the portal ignored the "
                  "filter)" if res.skipped_filtered else "")
               + f", {res.requests} API requests)"
               + (f"; the portal's post count went from {res.total_changed[0]} to {res.total_changed[1]} during the "
                  "pull, so a post may be missing: pull again to be sure" if res.total_changed else ""))
    return {"posts": len(records), "skipped_deleted": res.skipped_deleted, "skipped_untagged": untagged,
            "skipped_malformed": res.skipped_malformed, "skipped_repeated": res.skipped_repeated,
            "skipped_filtered": res.skipped_filtered,
            "requests": res.requests, "total_changed": list(res.total_changed) if res.total_changed else None,
            "outputs": {"records": str(args.out)}}


def _check_tag_names(client, out: str) -> None:
    """A CSV or TSV cell holds a post's tags joined by '|': a tag name holding '|' could not be written. Its
    tags are listed (one request) before the pull, which may take thousands, instead of failing at the write."""
    from collections.abc import Mapping

    from ...errors import UsageError, quoted_list
    from ...records import LIST_SEP, table_format
    from ._errors import QuackbackAPIError

    if table_format(out) not in ("csv", "tsv"):
        return
    try:
        tags = client.list_tags()
    except QuackbackAPIError as exc:
        if exc.retryable:
            raise
        return  # a key that may not list tags: the write still refuses such a name, by name
    bad = sorted({t["name"] for t in tags if isinstance(t, Mapping) and isinstance(t.get("name"), str)
                  and LIST_SEP in t["name"]})
    if bad:
        raise UsageError(f"the Quackback tag(s) {quoted_list(bad)} hold {LIST_SEP!r}, the separator of a post's tags "
                         f"in one CSV cell, so {out} could not hold them; write --out as .jsonl, .json or .parquet, "
                         "which keep tags as lists")


def cmd_export(args: argparse.Namespace) -> dict:
    from ..._atomic import writable_target
    from ...records import write_table

    writable_target(args.out)

    store = _open_store(args.data)
    try:
        posts = store.posts_frame(include_deleted=args.include_deleted)
        counts = store.counts()
    finally:
        store.close()
    cols = ["id", "text", "source", "created_at", "votes", "status", "status_stage", "status_changed_at",
            "first_status_change_at", "canonical_post_id", "sentiment", "predicted", "written", "deleted"]
    write_table(posts[[c for c in cols if c in posts]], args.out)
    _say(args, f"wrote {len(posts)} posts to {args.out}; events: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return {"posts": len(posts), "events": counts, "outputs": {"records": str(args.out)}}


def _open_store(data: str):
    from pathlib import Path

    from ...errors import InvalidInputError
    from ._store import IntegrationStore

    path = Path(data) / STORE_FILE
    if not path.exists():
        raise InvalidInputError(f"no Quackback integration store at {path} (the --data folder of `serve`)")
    return IntegrationStore(path)


def cmd_retry(args: argparse.Namespace) -> dict:
    from ...errors import InvalidInputError, quoted

    store = _open_store(args.data)
    try:
        n = store.requeue_failed(args.event)
        if args.event is not None and not n:  # a mistyped id said "0 failed event(s) queued again" and exit 0
            event = store.event(args.event)
            if event is None:
                raise InvalidInputError(f"no event {quoted(args.event)} in {args.data}/{STORE_FILE} (the ids are in "
                                        "`quackback export` and GET /v1/integrations/quackback/events/ID)")
            raise InvalidInputError(f"event {quoted(args.event)} is {event['state']}, not failed: only failed "
                                    "events are queued again")
    finally:
        store.close()
    _say(args, f"{n} failed event(s) queued again; the running service processes them within a second")
    return {"requeued": n}


def cmd_serve(args: argparse.Namespace) -> int:
    from ..._optional import require
    from ._asgi import create_app
    from ._setup import integration_from_args

    uvicorn = require("uvicorn", "serve", "the Quackback webhook server")
    from ...service._config import is_loopback

    if not is_loopback(args.host):  # said nowhere but in the docs: anyone reaching the port read every result
        logging.getLogger(__name__).warning(
            "listening on %s: reachable from other machines, and the suggestions, status and events endpoints have "
            "no API key here; expose only /v1/integrations/quackback/webhook (a reverse proxy), or use "
            "`feedback-nlp serve`, whose read endpoints need one", args.host)
    integration = integration_from_args(args, args.data)
    app = create_app(integration, respond_within=args.quackback_respond_within)
    print(f"Quackback webhook on http://{args.host}:{args.port}/v1/integrations/quackback/webhook "
          f"(events in {integration.store.path})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=10)
    return 0


def add_quackback_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``quackback pull`` and ``quackback export`` to the CLI's sub-commands."""
    from ...cli import _common_flags  # --json/--quiet/--debug/--verbose after the sub-command too

    common = [_common_flags(suppress=True)]
    p = sub.add_parser("quackback", help="Quackback feedback hub: pull posts, export what the webhook saw",
                       parents=common)
    qsub = p.add_subparsers(dest="quackback_command", required=True)

    q = qsub.add_parser("pull", help="every post of a Quackback portal into a records file", parents=common)
    q.add_argument("--url", required=True, help="the portal's address, e.g. https://feedback.acme.com")
    q.add_argument("--key-file", default=None, help=f"file holding the API key (default: ${KEY_ENV})")
    q.add_argument("--out", required=True, type=_output_file, help="output .csv, .tsv, .parquet, .jsonl or .json")
    q.add_argument("--board-id", default=None, help="only this board")
    q.add_argument("--status", default=None, help="only posts with this status slug")
    q.add_argument("--since", default=None, help="only posts created on or after this date (ISO)")
    q.add_argument("--limit", type=int, default=100, help="posts per page (1-100) (default: %(default)s)")
    q.add_argument("--max-posts", type=_positive_int, default=DEFAULT_MAX_POSTS,
                   help="stop with an error when the portal still has more after this many posts, a guard against "
                        "a portal whose pages never end (default: %(default)s)")
    q.add_argument("--tagged-only", action="store_true", help="leave out posts without tags (to train a tag model)")
    q.add_argument("--insecure", action="store_true", help="allow http:// to a host other than loopback")
    q.set_defaults(func=cmd_pull)

    q = qsub.add_parser("export", help="posts, statuses and predictions the webhook has stored, as records", parents=common)
    q.add_argument("--data", required=True, help="the --data folder of `feedback-nlp serve`")
    q.add_argument("--out", required=True, type=_output_file, help="output .csv, .tsv, .parquet, .jsonl or .json")
    q.add_argument("--include-deleted", action="store_true", help="keep deleted and merged posts")
    q.set_defaults(func=cmd_export)

    q = qsub.add_parser("retry", help="queue failed webhook events again (after fixing what made them fail)",
                        parents=common)
    q.add_argument("--data", required=True, help="the --data folder of `feedback-nlp serve`")
    q.add_argument("--event", default=None, help="only this event id (default: every failed event)")
    q.set_defaults(func=cmd_retry)

    q = qsub.add_parser("serve", help="only the Quackback webhook (feedback-nlp serve mounts it beside the API)", parents=common)
    q.add_argument("--data", required=True, help="folder of the integration's store (events, posts, suggestions)")
    q.add_argument("--model", default=None, help="tag model folder or bundled name (default: request-type)")
    q.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    q.add_argument("--port", type=_port, default=8080, help="TCP port, 0-65535 (default: 8080)")
    add_quackback_options(q, standalone=True)
    q.set_defaults(func=cmd_serve)
    return p
