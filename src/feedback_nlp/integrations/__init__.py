"""Integrations with the tools product teams already use (one subpackage per tool).

- :mod:`feedback_nlp.integrations.quackback`: tag, de-duplicate and track the status of posts in a
  Quackback feedback hub, through its webhooks and REST API v1.
"""

__all__: list[str] = []
