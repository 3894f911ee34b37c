"""Control characters from events are escaped in every alert, once, where it is built: no
forged lines, terminal escapes or reversed text reach a chat tool, a terminal or a log."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import engine, feed, login
from watchdog.alerts.model import Alert, encode_alert, safe_text


def _alert(**kw: object) -> Alert:
    base: dict[str, object] = dict(alert_id="r:1", rule="r", severity="low",
                                   ts="2026-11-20T00:00:00.000Z", user_id="e1",
                                   event_ids=("ev-1",), summary="fine")
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


def test_newlines_ansi_and_bidi_are_escaped() -> None:
    a = _alert(summary="Account x\nALERT resolved\x1b[2K\x1b[31m \u202eevil",
               user_id="e1\r\n[ok]", event_ids=("ev\t1", "ev-2"),
               labels={"dataset": "crm\x00\x7f\x9b", "n": "1"})
    assert a.summary == "Account x\\nALERT resolved\\x1b[2K\\x1b[31m \\u202eevil"
    assert a.user_id == "e1\\r\\n[ok]"
    assert a.event_ids == ("ev\\t1", "ev-2")
    assert a.labels == {"dataset": "crm\\x00\\x7f\\x9b", "n": "1"}
    doc = orjson.loads(encode_alert(a))
    for text in (doc["summary"], doc["user_id"], *doc["event_ids"], *doc["labels"].values()):
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in text)


def test_clean_text_is_left_alone() -> None:
    text = "Account e10042 wrote personal data — ünïcode, 日本語, emoji 🙂"
    assert safe_text(text) is text
    a = _alert(summary=text)
    assert a.summary is text
    # decoding an encoded alert gives it back unchanged (escaping is idempotent)
    again = orjson.loads(encode_alert(_alert(summary="a\nb")))["summary"]
    assert safe_text(again) == again


@given(st.text())
def test_no_control_character_survives(text: str) -> None:
    out = safe_text(text)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f or c in "\u2028\u2029\u202e"
                   for c in out)
    if text == out:
        assert safe_text(out) == out


def test_an_event_cannot_write_lines_into_the_alert_the_engine_builds() -> None:
    user = "e1\n[resolved] all clear\x1b[8m"
    alerts = feed(engine(), [login(outcome="failure", user=user) for _ in range(12)])
    assert alerts
    for a in alerts:
        assert "\n" not in a.summary
        assert "\x1b" not in a.summary
        assert "\n" not in a.user_id
