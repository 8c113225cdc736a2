"""Quackback integration: local tagging, duplicate suggestions and status tracking for a Quackback hub.

Quackback (an open-source feedback hub) sends signed webhooks on new and changed posts; this package verifies
them, stores each event once, tags the post with feedback_nlp's models, looks for duplicates in the backlog,
and writes confident tags back through Quackback's REST API v1 — as a union with the tags people set.
``pull_posts`` reads a whole portal into the record schema. See ``docs/quackback.md``.

Example:
    >>> from feedback_nlp.integrations.quackback import sign, status_stage
    >>> sign("whsec", 1700000000, b"{}")[:7], status_stage("In Progress")
    ('sha256=', 'in_progress')
"""

from ._asgi import PREFIX, create_app, quackback_routes
from ._client import QuackbackClient
from ._errors import EventError, QuackbackAPIError, QuackbackAuthError, QuackbackError, SignatureError
from ._events import WebhookEvent, parse_event
from ._integration import QuackbackIntegration
from ._processor import ClassifierTagger, Prediction, Processor, VectorBacklog, WriteBack
from ._pull import PullResult, post_text, posts_to_records, pull_posts
from ._secrets import Secret, read_secret
from ._signature import DEFAULT_TOLERANCE_S, sign, signed_headers, verify_signature
from ._status import STAGES, status_stage
from ._store import IntegrationStore

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "PREFIX",
    "STAGES",
    "ClassifierTagger",
    "EventError",
    "IntegrationStore",
    "Prediction",
    "Processor",
    "PullResult",
    "QuackbackAPIError",
    "QuackbackAuthError",
    "QuackbackClient",
    "QuackbackError",
    "QuackbackIntegration",
    "Secret",
    "SignatureError",
    "VectorBacklog",
    "WebhookEvent",
    "WriteBack",
    "create_app",
    "parse_event",
    "post_text",
    "posts_to_records",
    "pull_posts",
    "quackback_routes",
    "read_secret",
    "sign",
    "signed_headers",
    "status_stage",
    "verify_signature",
]
