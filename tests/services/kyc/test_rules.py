"""The automated KYC score on hand-built cases (pure)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from app.services.kyc.rules import (
    CaseFacts,
    DocumentFacts,
    age_on,
    is_override,
    names_match,
    present_reasons,
    score_case,
)

TODAY = dt.date(2026, 6, 15)
DOB = dt.date(1990, 3, 1)


def passport(**kw) -> DocumentFacts:
    base = dict(
        doc_type="passport",
        doc_number="P1234567",
        full_name="Anna Maria Müller",
        date_of_birth=DOB,
        expires_on=dt.date(2030, 1, 1),
        issuing_country="DE",
    )
    base.update(kw)
    return DocumentFacts(**base)


def facts(**kw) -> CaseFacts:
    base = dict(
        first_name="Anna",
        last_name="Muller",
        date_of_birth=DOB,
        country_code="DE",
        documents=(passport(),),
        high_risk_countries=frozenset({"IR", "KP"}),
    )
    base.update(kw)
    return CaseFacts(**base)


def codes(score) -> set[str]:
    return {r.code for r in score.reasons}


def test_clean_case_is_approved_with_no_reasons() -> None:
    s = score_case(facts(), today=TODAY)
    assert (s.score, s.reasons, s.suggestion) == (0, (), "approve")


def test_expired_document_needs_review() -> None:
    s = score_case(facts(documents=(passport(expires_on=dt.date(2026, 6, 14)),)), today=TODAY)
    assert codes(s) == {"document_expired"}
    assert s.score == 40 and s.suggestion == "review"
    assert "2026-06-14" in s.reasons[0].detail


def test_document_expiring_soon_is_a_small_signal() -> None:
    s = score_case(facts(documents=(passport(expires_on=TODAY),)), today=TODAY)
    assert codes(s) == {"document_expiring"} and s.suggestion == "approve"


def test_name_and_dob_mismatch_add_up_to_reject() -> None:
    s = score_case(
        facts(documents=(passport(full_name="Boris Kowalski", date_of_birth=dt.date(1991, 3, 1)),)), today=TODAY
    )
    assert codes(s) == {"name_mismatch", "dob_mismatch"}
    assert s.score == 70 and s.suggestion == "reject"


def test_underage_on_the_decision_date_rejects() -> None:
    born = dt.date(2008, 6, 16)  # 18 tomorrow
    s = score_case(facts(date_of_birth=born, documents=(passport(date_of_birth=born),)), today=TODAY)
    assert "underage" in codes(s) and s.suggestion == "reject" and s.score == 100
    s2 = score_case(facts(date_of_birth=born, documents=(passport(date_of_birth=born),)), today=TODAY + dt.timedelta(1))
    assert "underage" not in codes(s2) and s2.suggestion == "approve"


def test_underage_by_document_even_when_profile_says_adult() -> None:
    s = score_case(facts(documents=(passport(date_of_birth=dt.date(2010, 1, 1)),)), today=TODAY)
    assert {"underage", "dob_mismatch"} <= codes(s)


def test_duplicate_document_across_players() -> None:
    s = score_case(facts(duplicate_documents={"P1234567": (42, 43)}), today=TODAY)
    assert codes(s) == {"duplicate_document"} and s.score == 50 and s.suggestion == "review"
    assert "#42, #43" in s.reasons[0].detail


def test_blacklist_hit_is_a_hard_reject_and_hits_fold_into_one_reason() -> None:
    s = score_case(facts(blacklist_hits=("email a@x.com (entry #1)", "ip 1.2.3.4 (entry #2)")), today=TODAY)
    assert codes(s) == {"blacklist_hit"} and s.suggestion == "reject" and s.score == 60
    assert "entry #1" in s.reasons[0].detail and "entry #2" in s.reasons[0].detail


def test_high_risk_country_of_player_or_document() -> None:
    s = score_case(facts(country_code="IR"), today=TODAY)
    assert codes(s) == {"high_risk_country"} and s.suggestion == "review" and s.score == 20
    s2 = score_case(facts(documents=(passport(issuing_country="KP"),)), today=TODAY)
    assert "KP" in s2.reasons[0].detail


def test_deposit_velocity_by_count_or_amount() -> None:
    assert codes(score_case(facts(deposits_24h=6), today=TODAY)) == {"deposit_velocity"}
    assert codes(score_case(facts(deposits_24h=1, deposits_24h_eur=Decimal("2500")), today=TODAY)) == {
        "deposit_velocity"
    }
    assert codes(score_case(facts(deposits_24h=5, deposits_24h_eur=Decimal("2000")), today=TODAY)) == set()


def test_no_identity_document() -> None:
    s = score_case(facts(documents=(DocumentFacts("proof_of_address", full_name="Anna Muller"),)), today=TODAY)
    assert codes(s) == {"no_identity_document"} and s.suggestion == "review"


def test_score_is_capped_and_reasons_sorted_by_weight() -> None:
    s = score_case(
        facts(country_code="IR", blacklist_hits=("x",), duplicate_documents={"P1": (1,)}, deposits_24h=9), today=TODAY
    )
    assert s.score == 100
    weights = [r.weight for r in s.reasons]
    assert weights == sorted(weights, reverse=True)
    assert s.reasons_json()[0] == {"code": "blacklist_hit", "detail": "x", "weight": 60, "params": [{"text": "x"}]}


def test_helpers() -> None:
    assert age_on(dt.date(2000, 2, 29), dt.date(2018, 2, 28)) == 17
    assert age_on(dt.date(2000, 2, 29), dt.date(2018, 3, 1)) == 18
    assert names_match("José", "García-López", "JOSE GARCIA LOPEZ")
    assert not names_match("Jose", "Garcia", "Jose Martinez")
    assert is_override("approve", "rejected") and is_override("approve", "reupload_requested")
    assert is_override("reject", "approved") and not is_override("reject", "reupload_requested")
    assert not is_override("review", "approved") and not is_override("approve", "approved")


PERSONAL = ("Anna", "Muller", "Boris", "Kowalski", "1990-03-01", "1991-03-01", "P1234567", "a@x.com", "10.1.2.3")


def test_masked_reasons_carry_no_personal_data() -> None:
    """Analysts read KYC reasons (Player 360) without names, dates of birth, document numbers or blacklisted values."""
    s = score_case(
        facts(
            documents=(passport(full_name="Boris Kowalski", date_of_birth=dt.date(1991, 3, 1)),),
            duplicate_documents={"P1234567": (42,)},
            blacklist_hits=(
                {"category": "email", "identifier": "a@x.com", "entry_id": 7, "scope": "all brands",
                 "reason": "ring around a@x.com, 10.1.2.3"},
            ),
        ),
        today=TODAY,
    )  # fmt: skip
    raw = json.dumps(present_reasons(s.reasons_json(), masked=False))
    assert all(v in raw for v in PERSONAL[2:])  # the unmasked text names them (compliance needs them)
    masked = present_reasons(s.reasons_json(), masked=True)
    text = json.dumps(masked)
    assert not [v for v in PERSONAL if v in text], text
    assert {r["code"] for r in masked} == {"name_mismatch", "dob_mismatch", "duplicate_document", "blacklist_hit"}
    assert "#42" in text and "entry #7" in text and "B*** K***" in text  # what is not personal stays
    assert all(set(r) == {"code", "detail", "weight"} for r in masked)  # no params (raw values) leave


def test_stored_reasons_without_params_are_masked_by_code() -> None:
    stored = [
        {"code": "name_mismatch", "detail": "name on document 'B. Kowalski' differs from account name 'Anna Muller'",
         "weight": 30},
        {"code": "dob_mismatch", "detail": "date of birth on document 1991-03-01 differs from account 1990-03-01",
         "weight": 30},
        {"code": "mystery", "detail": "Anna Muller P1234567", "weight": 5},
    ]  # fmt: skip
    text = json.dumps(present_reasons(stored, masked=True))
    assert not [v for v in PERSONAL if v in text], text
    assert "details hidden for your role" in text


def test_duplicates_outside_the_visible_players_are_left_out() -> None:
    s = score_case(facts(duplicate_documents={"P1234567": (42, 43), "X9": (44,)}), today=TODAY)
    shown = present_reasons(s.reasons_json(), masked=False, visible_players={43})
    assert [r["detail"] for r in shown] == ["document P1234567 also used by player(s) #43"]
    legacy = [{"code": "duplicate_document", "detail": "document number X9 is also used by player 44", "weight": 45}]
    assert present_reasons(legacy, masked=False, visible_players={43}) == []
    assert present_reasons(legacy, masked=False, visible_players=None) == legacy
