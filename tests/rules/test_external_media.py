"""external_media: personal data written to removable media is forbidden outright."""

from __future__ import annotations

import pytest

from tests.builders import event, only, run


@pytest.mark.parametrize("action", ["copy", "export", "download"])
def test_personal_data_to_external_media_fires(action):
    alerts = run(event(action=action, dest={"kind": "external_media"}))
    assert [a.rule for a in alerts] == ["external_media"]
    assert alerts[0].severity == "critical"


def test_subject_count_only_to_external_media_fires():
    ev = event(action="copy", categories=None, subject_ids=None, subject_count=3,
               dest={"kind": "external_media"})
    assert len(only("external_media", run(ev))) == 1


@pytest.mark.parametrize("kind", ["internal", "print", "email"])
def test_other_destinations_are_not_external_media(kind):
    assert only("external_media", run(event(action="copy", dest={"kind": kind}))) == []


def test_no_personal_data_to_external_media_is_silent():
    ev = event(action="copy", categories=None, subject_ids=None, purpose=None,
               dest={"kind": "external_media"})
    assert run(ev) == []
