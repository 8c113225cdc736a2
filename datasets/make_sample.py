"""Generate the bundled sample: ~3,000 feedback items about "Flowboard", a fictional project-management SaaS.

Deterministic (seeded): running it again writes byte-identical files. Written for this project; no real
customer data. What it plants, so that tests and the demo can check the library finds it:

- five channels (support e-mails with signatures, quoted replies and PII; Slack; sales-call notes; survey
  answers; app reviews), 220 accounts with annual revenue, timestamps over six months;
- taxonomy labels: ``product_area`` (one or two areas, ``|``-joined) and ``request_type``;
- ``dup_group``: 40 groups of 3–6 near-duplicate rephrasings of one request;
- a theme that only appears in the last five weeks (the new AI summaries feature), growing week by week.

Usage: python datasets/make_sample.py [--out datasets/]
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 20261125
N_ITEMS = 3000
START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAYS = 182
EMERGING_AREA = "ai_summaries"
EMERGING_FROM_DAY = DAYS - 35

# (area, request_type) -> core statements. {x} slots are filled from FILLERS.
CORES: dict[tuple[str, str], list[str]] = {
    ("billing", "bug"): [
        "we were charged twice for the {plan} plan this month",
        "the invoice shows the wrong number of seats",
        "our card payment keeps failing at checkout even though the card is valid",
        "the VAT number is missing from the invoice PDF",
        "downgrading to the {plan} plan did not reduce our bill",
    ],
    ("billing", "feature_request"): [
        "please let us pay annually by bank transfer instead of card",
        "we need invoices addressed to our finance department with a PO number",
        "it would help to have usage-based billing for occasional guests",
        "allow us to split the invoice across two cost centres",
    ],
    ("billing", "question"): [
        "how is the price calculated when we add seats in the middle of the month",
        "do you offer a discount for non-profits",
        "where can I download past invoices",
        "what happens to our data if we cancel the subscription",
    ],
    ("integrations", "bug"): [
        "the Slack integration stopped posting updates to our channel",
        "Jira sync creates duplicate tickets every time we edit a task",
        "the GitHub integration does not link pull requests any more",
        "Google Calendar events from Flowboard show the wrong time zone",
        "the Zapier trigger for new tasks fires twice",
    ],
    ("integrations", "feature_request"): [
        "please add a Microsoft Teams integration",
        "we would love a two-way sync with Salesforce opportunities",
        "an integration with Linear would save us a lot of copy-paste",
        "please support webhooks for status changes",
        "we need an official integration with HubSpot",
    ],
    ("integrations", "question"): [
        "does the Jira integration support custom fields",
        "can the Slack integration post to private channels",
        "is there an API rate limit for the REST API",
    ],
    ("reporting", "bug"): [
        "the burndown chart shows zero even though tasks were closed",
        "dashboard numbers do not match the task list",
        "the weekly report e-mail arrives empty",
        "time tracking totals in the report are off by one day",
    ],
    ("reporting", "feature_request"): [
        "we need custom dashboards per team",
        "please add a cumulative flow diagram",
        "let us schedule reports to be sent to stakeholders every Monday",
        "we want to filter the workload report by project and assignee",
    ],
    ("reporting", "question"): [
        "how do I share a dashboard with people outside our workspace",
        "can reports include archived projects",
    ],
    ("export", "bug"): [
        "CSV export cuts off long descriptions",
        "exporting a board to PDF fails with an error after a minute",
        "the Excel export scrambles accented characters",
        "export to CSV times out for projects with many tasks",
    ],
    ("export", "feature_request"): [
        "please add an export to Excel with formatting",
        "we need a full workspace export for our compliance archive",
        "let us export comments together with tasks",
    ],
    ("mobile", "bug"): [
        "the iOS app crashes when I open a task with attachments",
        "push notifications on Android arrive hours late",
        "the mobile app logs me out every day",
        "offline changes in the Android app are lost when I reconnect",
        "the iPad app layout is broken in landscape",
    ],
    ("mobile", "feature_request"): [
        "please add offline mode to the mobile app",
        "we want a home-screen widget showing today's tasks",
        "dark mode for the mobile app please",
    ],
    ("performance", "bug"): [
        "boards with more than 500 cards take forever to load",
        "the app is extremely slow in the afternoon",
        "search takes ten seconds to return results",
        "the timeline view freezes the browser tab",
    ],
    ("security", "feature_request"): [
        "we need SAML single sign-on with Okta",
        "please add SCIM provisioning so we can deprovision leavers automatically",
        "audit logs of who changed permissions are a must for our security review",
        "we require enforced two-factor authentication for all members",
        "please let admins restrict sign-in to our company domain",
    ],
    ("security", "question"): [
        "are you SOC 2 Type II certified",
        "where is our data stored, EU or US",
        "do you support SSO on the Business plan",
    ],
    ("notifications", "bug"): [
        "I get e-mail notifications for tasks I am not following",
        "mentions in comments do not trigger a notification",
        "notification digests arrive in the wrong language",
    ],
    ("notifications", "feature_request"): [
        "please let us mute notifications for a single project",
        "we want a daily digest instead of one e-mail per change",
        "notification settings per workspace would help",
    ],
    ("onboarding", "feature_request"): [
        "new members need a guided tour of boards",
        "please provide templates for marketing teams",
        "importing from Trello should keep labels and checklists",
    ],
    ("onboarding", "question"): [
        "how do I invite my whole team at once",
        "can we import our projects from Asana",
        "is there a training session for new admins",
    ],
    ("ux", "praise"): [
        "the new board view is fantastic, our team loves it",
        "Flowboard made our sprint planning so much easier",
        "great product, the keyboard shortcuts save me hours",
        "really love how clean and fast the interface feels",
        "support was quick and friendly, thank you",
    ],
    ("ux", "feature_request"): [
        "please add dark mode to the web app",
        "we want to customise the colours of labels",
        "let us collapse columns on the board",
        "keyboard shortcut to move a card to the next column please",
    ],
    (EMERGING_AREA, "feature_request"): [
        "the AI summary should also cover comments, not only the description",
        "please let us turn off AI summaries for confidential projects",
        "we want the AI assistant to summarise a whole sprint",
        "AI summaries should be available in German and French",
    ],
    (EMERGING_AREA, "bug"): [
        "the AI summary of long tasks stops mid-sentence",
        "AI summaries invent action items that are not in the task",
        "the summarise button spins forever on big tasks",
    ],
    (EMERGING_AREA, "question"): [
        "is our task data used to train the AI summary model",
        "which plans include the AI summaries",
    ],
}
# Two-area statements: a multi-label product area.
MULTI: list[tuple[tuple[str, str], str, str]] = [
    (("reporting", "export"), "bug", "exporting the dashboard report to PDF loses all the charts"),
    (("reporting", "export"), "feature_request", "please let us export dashboard reports to Excel on a schedule"),
    (("mobile", "notifications"), "bug", "the Android app shows a notification badge that never clears"),
    (("integrations", "notifications"), "feature_request", "send notifications to Microsoft Teams, not just e-mail"),
    (("security", "billing"), "question", "is SSO included in the price or a paid add-on"),
    (("mobile", "performance"), "bug", "the iOS app takes a minute to load large boards"),
    (("integrations", "reporting"), "feature_request", "we want Jira issues to show up in Flowboard dashboards"),
]
FILLERS = {"plan": ["Business", "Team", "Pro", "Enterprise"]}
PRAISE_TYPES = {"praise"}

FIRST = ["Anna", "Ben", "Chloé", "Daniel", "Elif", "Farah", "Goran", "Hiro", "Ines", "Jonas", "Kofi", "Lena",
         "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tariq", "Uma", "Viktor", "Wen", "Yusuf"]
LAST = ["Schmidt", "Okafor", "Martin", "Kowalski", "Nakamura", "Silva", "Haddad", "Johansson", "Rossi", "Patel"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell", "Soylent",
             "Cyberdyne", "Wonka", "Gringotts", "Monarch", "Oscorp", "Pied Piper", "Dunder", "Massive", "Aperture"]
SOURCE_WEIGHTS = {"support": 0.34, "slack": 0.16, "sales_call": 0.12, "survey": 0.2, "app_review": 0.18}

OPENERS = {
    "support": ["Hi team,", "Hello,", "Hi Flowboard support,", "Good morning,", "Hey there,"],
    "slack": ["", "fyi", "heads up:", "customer says", "ugh,"],
    "sales_call": ["Call notes: customer said", "Prospect mentioned", "On the renewal call they said",
                   "Discovery call: their team lead said", "QBR notes -"],
    "survey": ["", "What could we improve? ", "NPS comment:", "Open feedback:"],
    "app_review": ["", "★★☆☆☆", "★★★★★", "Update:", "Honest review:"],
}
CLOSERS = ["", "", "Thanks!", "This is blocking us.", "Any update would be appreciated.", "Please fix asap.",
           "Otherwise we are happy.", "It happens every time.", "Hope this helps."]
PRAISE_CLOSERS = ["", "Keep it up!", "Thanks!", "5 stars."]


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    digits.append((10 - total % 10) % 10)
    s = "".join(map(str, digits))
    return " ".join(s[i:i + 4] for i in range(0, 16, 4))


def _style(rng: random.Random, source: str, core: str, rtype: str, person: tuple[str, str], company: str) -> str:
    opener = rng.choice(OPENERS[source])
    closer = rng.choice(PRAISE_CLOSERS if rtype in PRAISE_TYPES else CLOSERS)
    sentence = core[0].upper() + core[1:]
    if rtype == "question" and not sentence.endswith("?"):
        sentence += "?"
    elif not sentence.endswith((".", "!", "?")):
        sentence += "."
    if source == "support":
        first, last = person
        body = f"{opener}\n\n{sentence} {closer}".strip()
        extra = rng.random()
        if extra < 0.15:
            body += f"\nYou can reach me at +44 20 7946 {rng.randrange(1000, 9999)} or {first.lower()}.{last.lower()}@{company.lower().replace(' ', '')}.com."
        elif extra < 0.2 and "charged" in core:
            body += f"\nThe card used was {_luhn_card(rng)}."
        sign = rng.choice(["Best regards", "Thanks", "Cheers", "Kind regards"])
        body += f"\n\n{sign},\n{first} {last}\n{company} Ltd"
        if rng.random() < 0.25:
            body += ("\n\nOn Mon, Apr 6, 2026 at 9:14 AM Flowboard Support <help@flowboard.io> wrote:\n"
                     "> Thanks for reaching out! Could you tell us more?\n> Flowboard Support")
        if rng.random() < 0.2:
            body = "<div>" + body.replace("\n\n", "</div><div>").replace("\n", "<br>") + "</div>"
        return body
    if source == "slack":
        s = f"{opener} {core}".strip()
        return s if rng.random() < 0.5 else s + " " + rng.choice(["", ":(", "🙏", "cc @pm-team", "(from #customer-feedback)"])
    if source == "sales_call":
        return f"{opener} {core}. {company} has {rng.choice([12, 40, 85, 150, 400])} seats; " + rng.choice(
            ["deal depends on it.", "nice to have.", "mentioned twice.", "renewal in Q3.", "follow up next week."])
    if source == "survey":
        return f"{opener} {sentence} {closer}".strip()
    return f"{opener} {sentence} {closer}".strip()


def _paraphrase(rng: random.Random, core: str) -> str:
    """A light rewording for planted near-duplicates."""
    swaps = [("please ", ""), ("we need", "we really need"), ("we want", "we'd like"), ("the ", "the "),
             ("does not", "doesn't"), ("do not", "don't"), ("keeps failing", "fails"), ("is missing", "is not shown")]
    out = core
    for a, b in rng.sample(swaps, k=3):
        out = out.replace(a, b, 1)
    return rng.choice(["", "again: ", "still: ", "+1 — "]) + out


def generate(seed: int = SEED, n: int = N_ITEMS) -> list[dict]:
    rng = random.Random(seed)
    accounts = []
    for i in range(220):
        company = f"{rng.choice(COMPANIES)} {rng.choice(['Labs', 'Group', 'Systems', 'Health', 'Retail', 'Bank'])}"
        revenue = round(rng.lognormvariate(9.6, 1.1), -1)  # annual contract value, long-tailed
        accounts.append((f"ACC-{i:04d}", company, revenue))
    weights = [1.0 / (1 + i) ** 0.6 for i in range(len(accounts))]  # big accounts talk more
    regular = [(k, c) for k, v in CORES.items() if k[0] != EMERGING_AREA for c in v]
    emerging = [(k, c) for k, v in CORES.items() if k[0] == EMERGING_AREA for c in v]
    dup_cores = rng.sample(regular, 40)
    rows: list[dict] = []

    def add(areas: tuple[str, ...], rtype: str, core: str, day: float, dup: str = "") -> None:
        acc_id, company, revenue = rng.choices(accounts, weights=weights)[0]
        source = rng.choices(list(SOURCE_WEIGHTS), weights=list(SOURCE_WEIGHTS.values()))[0]
        person = (rng.choice(FIRST), rng.choice(LAST))
        core = core.format(**{k: rng.choice(v) for k, v in FILLERS.items()})
        ts = START + timedelta(days=day, seconds=rng.randrange(8 * 3600, 19 * 3600))
        rows.append({
            "source": source, "account_id": acc_id, "account_revenue": f"{revenue:.0f}",
            "created_at": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "text": _style(rng, source, core, rtype, person, company.split()[0]),
            "product_area": "|".join(areas), "request_type": rtype, "dup_group": dup,
        })

    for g, ((area, rtype), core) in enumerate(dup_cores):
        day = rng.uniform(0, EMERGING_FROM_DAY)
        for j in range(rng.randint(3, 6)):
            add((area,), rtype, core if j == 0 else _paraphrase(rng, core), min(DAYS - 1, day + rng.uniform(0, 20)), f"D{g:02d}")
    n_emerging = 170
    for i in range(n_emerging):  # weekly volume rises over the last five weeks
        week = min(4, int((i / n_emerging) ** 0.6 * 5))
        (area, rtype), core = rng.choice(emerging)
        add((area,), rtype, core, EMERGING_FROM_DAY + week * 7 + rng.uniform(0, 7))
    n_multi = 160
    for _ in range(n_multi):
        areas, rtype, core = rng.choice(MULTI)
        add(areas, rtype, core, rng.uniform(0, DAYS))
    while len(rows) < n:
        (area, rtype), core = rng.choice(regular)
        add((area,), rtype, core, rng.uniform(0, DAYS))
    rows.sort(key=lambda r: r["created_at"])
    for i, r in enumerate(rows):
        r["id"] = f"FB-{i:05d}"
    return rows


TAXONOMY_YAML = """\
# Flowboard feedback taxonomy: product areas (one level below "product_area") and request types.
name: flowboard
tags:
  - {id: product_area, name: Product area, description: Which part of the product the feedback is about}
  - {id: billing, name: Billing, parent: product_area, description: "Invoices, payments, plans, pricing and subscriptions"}
  - {id: integrations, name: Integrations, parent: product_area, description: "Connections to Slack, Jira, GitHub, Teams, Salesforce, Zapier, webhooks and the API"}
  - {id: reporting, name: Reporting, parent: product_area, description: "Dashboards, charts, burndown and workload reports"}
  - {id: export, name: Export, parent: product_area, description: "Exporting boards and tasks to CSV, Excel or PDF"}
  - {id: mobile, name: Mobile apps, parent: product_area, description: "The iOS, iPad and Android apps"}
  - {id: performance, name: Performance, parent: product_area, description: "Slowness, load times, freezes"}
  - {id: security, name: Security and access, parent: product_area, description: "SSO, SAML, SCIM, two-factor authentication, audit logs, compliance"}
  - {id: notifications, name: Notifications, parent: product_area, description: "E-mail and push notifications, mentions, digests"}
  - {id: onboarding, name: Onboarding, parent: product_area, description: "Inviting teams, imports from other tools, templates, training"}
  - {id: ux, name: User experience, parent: product_area, description: "Look and feel of the interface, dark mode, shortcuts, general praise"}
  - {id: ai_summaries, name: AI summaries, parent: product_area, description: "The AI assistant that summarises tasks and sprints"}
  - {id: request_type, name: Request type, description: What kind of request the feedback is}
  - {id: bug, name: Bug report, parent: request_type, description: "Something is broken, fails, crashes or shows wrong data", examples: ["the export fails with an error"]}
  - {id: feature_request, name: Feature request, parent: request_type, description: "A request for a new capability or an improvement", examples: ["please add dark mode"]}
  - {id: question, name: Question, parent: request_type, description: "A question about how something works, pricing or policy", examples: ["how do I invite my team?"]}
  - {id: praise, name: Praise, parent: request_type, description: "Positive feedback and compliments", examples: ["love the new board view"]}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = ap.parse_args()
    out = Path(args.out)
    rows = generate()
    cols = ["id", "created_at", "source", "account_id", "account_revenue", "text", "product_area",
            "request_type", "dup_group"]
    with open(out / "sample_feedback.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    (out / "sample_taxonomy.yaml").write_text(TAXONOMY_YAML, encoding="utf-8")
    print(f"wrote {len(rows)} rows to {out / 'sample_feedback.csv'}")


if __name__ == "__main__":
    main()
