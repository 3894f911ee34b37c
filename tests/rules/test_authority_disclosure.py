"""authority_disclosure: data provided to a public body on a legal basis is recorded, and
never unapproved_third_party; without a basis it is a third party."""

from __future__ import annotations

from tests.builders import event, rules, run

POLICE = {"kind": "authority", "organization": "Metropolitan Police", "country": "JP"}


def provide(legal_basis=None, dest=POLICE):
    ev = event(action="transfer", dest=dest)
    if legal_basis is None:
        return ev
    import msgspec

    return msgspec.structs.replace(ev, data=msgspec.structs.replace(ev.data,
                                                                    legal_basis=legal_basis))


def test_with_a_legal_basis_it_is_recorded_not_a_third_party():
    alerts = run(provide("Code of Criminal Procedure art. 197(2)"))
    assert rules(alerts) == ["authority_disclosure"]
    assert alerts[0].severity == "low"


def test_without_a_legal_basis_it_is_judged_as_a_third_party():
    assert rules(run(provide())) == ["unapproved_third_party"]


def test_other_destinations_are_not_disclosures():
    dest = {"kind": "third_party", "organization": "Someone", "country": "JP"}
    assert "authority_disclosure" not in rules(run(provide("a law", dest)))


def test_cross_border_still_applies():
    dest = {**POLICE, "country": "US"}
    assert rules(run(provide("MLAT request", dest))) == ["authority_disclosure",
                                                       "cross_border_transfer"]
