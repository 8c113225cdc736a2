"""GitHub issues: the REST API's JSON (``GET /repos/{owner}/{repo}/issues``: a list of issues; ``gh api --paginate
--slurp``: a list of such pages; the search API's ``{"items": [...]}``; one issue per line from ``--jq '.[]'``) and
``gh issue list --json number,title,body,author,createdAt,labels,state,url``.

Each issue becomes one row: title and body (Markdown) joined as ``text``; ``<owner>/<repo>#<number>`` as ``id``
(the repository read from the issue's URL; the number alone when no URL was exported); ``source="other"`` with
``source_detail`` = ``github/<owner>/<repo>``; ``created_at``; the opener's login as ``author`` (REST ``user``, gh
``author``); ``state`` as ``status``; the web URL as ``url``; label names as ``github_labels`` (``bug|ui``). Pull
requests (the REST list returns them among issues, with a ``pull_request`` key; ``gh pr list`` by their
``/pull/`` URL) and issues opened by bots
(Dependabot, Renovate's dashboard) are not feedback: they are skipped and counted.

Example:
    >>> export = read_github("tests/fixtures/ingest/github_issues.json")
    >>> export.frame[["id", "author", "github_labels"]].iloc[0].tolist()
    ['acme/notes#1287', 'mkowalski', 'bug|sync']
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from ..errors import InputFileError, quoted, quoted_list
from ._export import Export, title_and_body
from ._json import JsonFile
from ._tables import _check_file, iter_json_lines, sniff_table_format

__all__ = ["iter_github", "read_github"]

# https://github.com/o/r/issues/12, https://api.github.com/repos/o/r/issues/12, GitHub Enterprise hosts too
_ISSUE_URL = re.compile(r"^https?://[^/]+/(?:api/v3/)?(?:repos/)?([^/\s]+)/([^/\s]+)/(?:issues|pull|pulls)/(\d+)\b")


def is_issue(record: Any) -> bool:
    """Whether a JSON record looks like a GitHub issue: a ``number``, a ``title``, an issue or pull URL and a ``body``
    or its opener (``user``/``author``); one with a ``text`` field of its own is a table someone prepared, read as
    such."""
    if not isinstance(record, dict) or "number" not in record or "title" not in record or "text" in record:
        return False
    if not {"body", "user", "author"} & record.keys():
        return False
    return any(isinstance(record.get(k), str) and _ISSUE_URL.match(record[k]) for k in ("html_url", "url"))


def _issues(path: Path, encoding: str | None,
            total: list[int] | None = None) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """(number, issue, reason it is rejected, its text) per issue, one at a time; pages are flattened. ``total``
    gains the issues the search API's ``total_count`` says there are."""
    if sniff_table_format(path) == "jsonl":
        items = iter_json_lines(path, encoding)
    else:
        doc = JsonFile(path, encoding)
        kind = doc.kind()
        keys = doc.keys() if kind == "object" else {}
        if kind == "array":
            items = doc.items()
        elif "items" in keys and "items" in doc.arrays():  # the search API: {"total_count": 3, "items": [...]}
            items = doc.items("items")
            if str(keys.get("total_count")).isdigit() and total is not None:
                total.append(int(str(keys["total_count"])))
        elif kind == "object" and "number" in keys and "title" in keys:  # one issue (GET .../issues/12)
            items = iter([(1, doc.load(), None, None)])
        elif kind == "object" and isinstance(keys.get("message"), str):  # an error saved instead of the issues
            raise InputFileError(f"{path} holds a GitHub API error, not issues: {quoted(keys['message'])}")
        else:
            raise InputFileError(f"{path} is not a GitHub issues export: expected a list of issues (GET "
                                 "/repos/{owner}/{repo}/issues, gh issue list --json ...), {\"items\": [...]} or one "
                                 "issue per line")
    number = 0
    for _line, value, error, raw in _paged(items, path):
        if error is None and isinstance(value, list):  # gh api --paginate --slurp: a list of pages
            for issue in value:
                number += 1
                yield number, issue, None, None
            continue
        number += 1
        yield number, value, error, raw


def _paged(items: Iterator[tuple[int, Any, str | None, str | None]], path: Path,
           ) -> Iterator[tuple[int, Any, str | None, str | None]]:
    """The items, with ``gh api --paginate``'s output (one array per page, written one after the other) refused
    naming the options that make it one document."""
    try:
        yield from items
    except InputFileError as exc:
        if "extra data after the document" not in str(exc):
            raise
        raise InputFileError(f"{path} holds several JSON documents one after the other (gh api --paginate writes one "
                             "array per page): add --slurp (one array of pages) or --jq '.[]' (one issue per "
                             "line)") from None


def _is_pull_url(issue: dict[str, Any]) -> bool:
    """``gh pr list --json number,title,url`` gives pull requests without a ``pull_request`` key: their URL says so."""
    m = _ISSUE_URL.match(_web_url(issue)[0] or "")
    return m is not None and "/pull/" in m.group(0)


def _login(person: Any) -> Any:
    return person.get("login") or person.get("name") if isinstance(person, dict) else person


def _is_bot(issue: dict[str, Any]) -> bool:
    person = issue.get("user") if isinstance(issue.get("user"), dict) else issue.get("author")
    if not isinstance(person, dict):
        return False
    login = person.get("login")
    return (person.get("type") == "Bot" or person.get("is_bot") is True
            or (isinstance(login, str) and login.endswith("[bot]")))


def _labels(labels: Any) -> str | None:
    """Label names as one ``a|b`` cell (REST and gh give objects with a ``name``; some tools plain strings)."""
    if isinstance(labels, dict):  # GraphQL-shaped: {"nodes": [...]}
        labels = labels.get("nodes")
    if not isinstance(labels, list):
        return None
    names = [lab.get("name") if isinstance(lab, dict) else lab for lab in labels]
    return "|".join(str(n) for n in names if isinstance(n, (str, int)) and str(n)) or None


def _web_url(issue: dict[str, Any]) -> tuple[str | None, str | None]:
    """The issue's web URL (REST ``html_url``, gh ``url``; built from an API URL of github.com) and its repository."""
    urls = [issue[k] for k in ("html_url", "url") if isinstance(issue.get(k), str) and _ISSUE_URL.match(issue[k])]
    if not urls:
        return None, None
    m = _ISSUE_URL.match(urls[0])
    assert m is not None
    repo = f"{m.group(1)}/{m.group(2)}"
    if urls[0].startswith("https://api.github.com/"):
        return f"https://github.com/{repo}/issues/{m.group(3)}", repo
    return urls[0], repo


def _issue_row(issue: dict[str, Any], number: int) -> dict[str, Any]:
    web, repo = _web_url(issue)
    ident = issue.get("number")
    return {
        "_row": number, "_error": None, "_raw": None,
        "id": f"{repo}#{ident}" if repo and isinstance(ident, (str, int)) else ident,
        "text": title_and_body(issue.get("title"), issue.get("body")),
        "source": "other",
        "source_detail": f"github/{repo}" if repo else "github",
        "created_at": issue.get("created_at") or issue.get("createdAt"),
        "author": _login(issue.get("user") if "user" in issue else issue.get("author")),
        "status": issue.get("state"),
        "url": web or next((issue[k] for k in ("html_url", "url") if isinstance(issue.get(k), str)), None),
        "github_labels": _labels(issue.get("labels")),
        "closed_at": issue.get("closed_at") or issue.get("closedAt"),
    }


def _describe(record: Any) -> str:
    if isinstance(record, dict):
        return f"an object with the keys {quoted_list(list(record), 6)}"
    return f"a {type(record).__name__}"


def read_github(path: str | os.PathLike, *, encoding: str | None = None) -> Export:
    """Read GitHub issues (REST API or ``gh`` JSON) into one raw row per issue (see module doc).

    ``_row`` numbers the issues of the export in order (pull requests and bots' issues included); an issue that
    is not an object, or a malformed JSON line, becomes one rejected row. :func:`iter_github` gives the same rows
    one at a time.
    """
    skipped: Counter[str] = Counter()
    return Export.from_rows(iter_github(path, encoding=encoding, skipped=skipped), skipped)


def iter_github(path: str | os.PathLike, *, encoding: str | None = None,
                skipped: MutableMapping[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """The raw rows of :func:`read_github`, an issue at a time (memory: one issue, never the export);
    ``skipped`` counts the pull requests and bots' issues left out."""
    path = Path(path)
    _check_file(path)
    counts = skipped if skipped is not None else {}
    first, number = True, 0
    total: list[int] = []
    for number, issue, error, raw in _issues(path, encoding, total):
        if first and error is None and not (isinstance(issue, dict) and "number" in issue and "title" in issue):
            raise InputFileError(f"{path} is not a GitHub issues export: its first record is "
                                 f"{_describe(issue)}, not an issue (with a 'number' and a 'title')")
        first = False
        if error is None and not isinstance(issue, dict):
            error, raw = f"issue is a {type(issue).__name__}, not an object", str(issue)
        elif error is None and not ("number" in issue or "title" in issue):
            error, raw = "not a GitHub issue (no 'number' and no 'title')", str(issue)[:2000]
        if error is not None:
            yield {"_row": number, "_error": error, "_raw": raw, "source": "other"}
            continue
        if issue.get("pull_request") is not None or issue.get("isPullRequest") is True or _is_pull_url(issue):
            reason = "pull request"
        elif _is_bot(issue):
            reason = "bot issue"
        else:
            yield _issue_row(issue, number)
            continue
        counts[reason] = counts.get(reason, 0) + 1
    if total and total[0] > number:
        # one page of the search API saved alone (30 of its total_count by default; it never returns over 1,000)
        reason = "issue not in the export (one page of the search API saved alone?)"
        counts[reason] = counts.get(reason, 0) + total[0] - number
