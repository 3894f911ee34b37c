"""One line a person reads first (a page's title, a chat message's heading).

A sentence naming who (the account, or the log source for ``log_gap``), where (the dataset),
which rule and the promise it broke: "Account u0042 on crm.audit broke “we restrict the means
of taking personal information out” (external_media)". The clause is the policy's own words
(the first one the alert cites), else the rule's commitment in general terms; it is cut at a
word boundary so that a pager's title field keeps the account and rule visible.
"""

from __future__ import annotations

from watchdog.alerts.model import Alert

_CLAUSE_CHARS = 110
# general words when the policy cites no clause (the rule's ``commitment`` says it better,
# but titles must not import the rules: alerts come from the daemon's sinks too)
_FALLBACK = "the policy"


def _clause(alert: Alert) -> str:
    text = alert.clauses[0] if alert.clauses else ""
    # a clause is cited "Section: quote" (contract 1.1); the quote is the promise
    quote = text.split(": ", 1)[1] if ": " in text else text
    quote = " ".join(quote.split()).strip("\"“” ")
    if len(quote) > _CLAUSE_CHARS:
        quote = quote[:_CLAUSE_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return f"“{quote}”" if quote else _FALLBACK


def alert_title(alert: Alert) -> str:
    where = alert.labels.get("dataset", "")
    if alert.rule == "log_gap":  # its user_id is the dataset whose log has the gap
        who = f"Log source {alert.user_id}"
        where = ""
    else:
        who = f"Account {alert.user_id}"
    on = f" on {where}" if where else ""
    if alert.rule == "anomaly":
        return f"{who}{on} behaves unlike itself and its peers (anomaly)"
    return f"{who}{on} broke {_clause(alert)} ({alert.rule})"
