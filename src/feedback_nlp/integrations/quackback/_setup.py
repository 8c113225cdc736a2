"""Command-line options of the integration, shared by ``feedback-nlp serve`` and ``feedback-nlp quackback serve``,
and the builder that turns them into a running :class:`QuackbackIntegration`.

Secrets come from files (``--quackback-secret-file``, ``--quackback-key-file``) or from the environment
(``$QUACKBACK_WEBHOOK_SECRET``, ``$QUACKBACK_API_KEY``); there is deliberately no option taking a value.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from ..._argtypes import positive_seconds, seconds, share
from ._errors import QuackbackError

__all__ = ["STORE_FILE", "add_quackback_options", "build_integration", "integration_from_args", "processing_options",
           "quackback_enabled", "read_connection"]

logger = logging.getLogger(__name__)

KEY_ENV = "QUACKBACK_API_KEY"
SECRET_ENV = "QUACKBACK_WEBHOOK_SECRET"
STORE_FILE = "quackback.sqlite"


def add_quackback_options(p: argparse.ArgumentParser, *, standalone: bool = False) -> None:
    """Add the ``--quackback-*`` options (and ``--write-back``, ``--create-tags``, ``--auto-merge-above``)."""
    g = p.add_argument_group("Quackback webhook (POST /v1/integrations/quackback/webhook)")
    if not standalone:
        g.add_argument("--quackback", action="store_true",
                       help=f"mount the Quackback webhook, secret from ${SECRET_ENV} (or give --quackback-secret-file)")
    g.add_argument("--quackback-secret-file", default=None,
                   help=f"file holding the webhook's signing secret (default: ${SECRET_ENV})")
    g.add_argument("--quackback-url", default=None, help="the portal's address, for write-back (https://…)")
    g.add_argument("--quackback-key-file", default=None, help=f"file holding a Quackback API key (default: ${KEY_ENV})")
    g.add_argument("--write-back", action="store_true", help="add confident predicted tags to the posts in Quackback")
    g.add_argument("--create-tags", action="store_true", help="with --write-back: create tags Quackback does not have")
    g.add_argument("--auto-merge-above", type=share, default=None, metavar="SCORE",
                   help="merge a new post into its best duplicate candidate above SCORE (default: never merge)")
    g.add_argument("--quackback-min-confidence", type=share, default=0.5,
                   help="probability a tag needs to be written (default: %(default)s)")
    g.add_argument("--quackback-duplicate-threshold", type=share, default=0.9,
                   help="similarity from which a backlog post is reported as a duplicate candidate "
                        "(default: %(default)s)")
    g.add_argument("--quackback-sentiment-model", default=None, help="a tag model whose best tag is the sentiment")
    g.add_argument("--quackback-replay-window", type=positive_seconds, default=300.0,
                   help="seconds a delivery's timestamp may be off (default: %(default)s)")
    g.add_argument("--quackback-respond-within", type=seconds, default=2.0,
                   help="seconds the webhook waits for the result before answering 202 (Quackback times out at 5) "
                        "(default: %(default)s)")


def quackback_enabled(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quackback", False) or getattr(args, "quackback_secret_file", None))


def build_integration(data_dir: str | Path, secret: Any, *, tagger: Any = None, backlog: Any = None,
                      sentiment: Any = None, client: Any = None, write_back: bool = False, create_tags: bool = False,
                      min_confidence: float = 0.5, duplicate_threshold: float = 0.9,
                      auto_merge_above: float | None = None, replay_window: float = 300.0) -> Any:
    """A :class:`QuackbackIntegration` over ``data_dir/quackback.sqlite`` (not started)."""
    from ._integration import QuackbackIntegration
    from ._processor import Processor, WriteBack
    from ._store import IntegrationStore

    if (write_back or auto_merge_above is not None) and client is None:
        raise QuackbackError("--write-back and --auto-merge-above need --quackback-url and an API key")
    if create_tags and not write_back:
        raise QuackbackError("--create-tags only makes sense with --write-back")
    store = IntegrationStore(Path(data_dir) / STORE_FILE)
    wb = WriteBack(client, create_tags=create_tags) if client is not None else None
    processor = Processor(store, tagger=tagger, backlog=backlog, sentiment=sentiment,
                          write_back=wb if write_back else None, client=client, min_confidence=min_confidence,
                          duplicate_threshold=duplicate_threshold, auto_merge_above=auto_merge_above)
    return QuackbackIntegration(processor, secret, tolerance_s=replay_window)


def read_connection(args: argparse.Namespace) -> tuple[Any, Any]:
    """The signing secret and, with ``--quackback-url``, a client with the API key (both read here, so that a
    missing file fails at once, before any model loads)."""
    from ._client import QuackbackClient
    from ._secrets import read_secret

    secret = read_secret(args.quackback_secret_file, SECRET_ENV, what="webhook signing secret")
    client = None
    if args.quackback_url:
        client = QuackbackClient(args.quackback_url, read_secret(args.quackback_key_file, KEY_ENV, what="API key"))
    return secret, client


def processing_options(args: argparse.Namespace, *, embedder: Any = None) -> dict[str, Any]:
    """The keyword arguments of :func:`build_integration` other than the secret, client, tagger and backlog."""
    sentiment = None
    if args.quackback_sentiment_model:
        from ...tagging import TagClassifier
        from ._processor import ClassifierTagger

        sentiment = ClassifierTagger(TagClassifier.load(args.quackback_sentiment_model, embedder=embedder))
    return {"sentiment": sentiment, "write_back": args.write_back, "create_tags": args.create_tags,
            "min_confidence": args.quackback_min_confidence, "duplicate_threshold": args.quackback_duplicate_threshold,
            "auto_merge_above": args.auto_merge_above, "replay_window": args.quackback_replay_window}


def integration_from_args(args: argparse.Namespace, data_dir: str | Path) -> Any:
    """The webhook-only server's integration: the ``--model`` classifier as tagger and an in-process
    :class:`VectorBacklog` rebuilt from the posts the integration has stored."""
    from ...embedding import Embedder
    from ...errors import ModelMismatchError
    from ...tagging import TagClassifier
    from ._processor import ClassifierTagger, VectorBacklog

    secret, client = read_connection(args)
    model = getattr(args, "model", None) or "request-type"
    # Duplicates (and a sentiment model) compare posts on the base model's vectors: a fine-tuned tag model's
    # encoder is trained to separate its tags, not to find the same request said twice.
    embedder = Embedder()
    try:
        clf = TagClassifier.load(model, embedder=embedder)  # a LoRA adapter merges over this base
    except ModelMismatchError:  # a fully fine-tuned model brings its own encoder
        clf = TagClassifier.load(model)
    tagger = ClassifierTagger(clf)
    integration = build_integration(data_dir, secret, tagger=tagger, client=client,
                                    **processing_options(args, embedder=embedder))
    posts = integration.store.posts_frame()
    backlog = VectorBacklog(embedder).load(dict(zip(posts["id"], posts["text"])))
    integration.processor.backlog = backlog
    # The first call loads the model's weights (seconds); pay that before the first delivery, not during it.
    tagger.predict(["warm-up"])
    embedder.encode(["warm-up"])
    logger.info("quackback webhook ready: write-back %s, %d posts in the backlog",
                f"to {client.base_url}" if args.write_back and client else "off", len(backlog))
    return integration
