"""Every metric definition names its version, and the version is pinned to a hash of the definition's text:
a change of what a metric counts (its formula, inclusions, exclusions, SQL, or the version of a metric it is
built from) fails here until the definition gets a new version and the new (name, version) is pinned. Old
versions stay pinned as the record of what they meant."""

from __future__ import annotations

from dataclasses import replace

import pytest

from warehouse import metrics

# (name, version) → definition_hash. Add a line for a new version; never edit a line.
PINNED: dict[tuple[str, int], str] = {
    ("handle", 1): "e60bccac2df5",
    ("ggr", 1): "662bd500470d",
    ("real_wins", 1): "d7e183ffe9c6",
    ("bonus_cost", 1): "7d039a15a13f",
    ("jackpot_contributions", 1): "fa516ed53405",
    ("provider_fees", 1): "df5dc22ea9d8",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("provider_fees", 2): "129429a16f20",
    ("payment_fees", 1): "262dd158456e",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("payment_fees", 2): "de0968e4ddb4",
    ("chargebacks", 1): "9d800fb0b796",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("chargebacks", 2): "302a60b37986",
    ("gaming_duty", 1): "45e4ca37dc3c",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("gaming_duty", 2): "02f1a37300e5",
    ("ngr", 1): "592b8293cbf5",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("ngr", 2): "38dc29e8e2c1",
    ("hold_pct", 1): "7dd40260917b",
    ("rtp", 1): "78f4dbe5bfc5",
    ("deposits", 1): "9fa7c4483049",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("deposits", 2): "2e7346fd7707",
    ("withdrawals", 1): "50cf97d8a510",
    ("net_deposits", 1): "33456cbd1881",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("net_deposits", 2): "9de36f643854",
    ("pending_withdrawals", 1): "1d70d4f94c68",
    ("active_players", 1): "58aa5152b506",
    ("registrations", 1): "a4e76e8126e5",
    ("ftds", 1): "536ad3696857",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("ftds", 2): "443b2b288ae0",
    ("ftds_charged_back", 1): "e7658e5b5b1e",
    ("ftd_conversion", 1): "f4f255896f86",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("ftd_conversion", 2): "04fcea157be0",
    ("depositing_players", 1): "3f0334391df1",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("depositing_players", 2): "e66d945f042b",
    ("arpu", 1): "25ba19de1e19",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("arpu", 2): "fadbdfc5740e",
    ("arppu", 1): "43080e02486b",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("arppu", 2): "aa066f456981",
    ("retention", 1): "870ff3bb77a3",
    ("ltv", 1): "c5e4ff6e5b0c",  # before the finance-grade dating (issue "Finance-grade numbers")
    ("ltv", 2): "e78634c9859e",
}


@pytest.mark.parametrize("m", metrics.CATALOGUE, ids=lambda m: m.name)
def test_each_definition_is_pinned_at_its_version(m):
    key = (m.name, m.version)
    assert key in PINNED, f"{m.tag} is not pinned: pin {key!r}: {metrics.definition_hash(m)!r}"
    assert metrics.definition_hash(m) == PINNED[key], (
        f"the definition of {m.name} changed but its version did not: bump it to v{m.version + 1} and pin the new "
        f"hash {metrics.definition_hash(m)!r} (and say what changed in docs/METRICS.md)"
    )


def test_a_silent_change_of_a_definition_is_caught():
    ngr = metrics.BY_NAME["ngr"]
    silently = replace(ngr, excluded=ngr.excluded + "; chargebacks")
    assert metrics.definition_hash(silently) != PINNED[("ngr", ngr.version)]
    assert metrics.definition_hash(replace(ngr, label="Net revenue")) == PINNED[("ngr", ngr.version)]  # wording


def test_a_new_component_version_is_a_new_definition_of_what_is_built_from_it(monkeypatch):
    before = metrics.definition_hash(metrics.BY_NAME["ngr"])
    duty = metrics.BY_NAME["gaming_duty"]
    monkeypatch.setitem(metrics.BY_NAME, "gaming_duty", replace(duty, version=duty.version + 1))
    assert metrics.definition_hash(metrics.BY_NAME["ngr"]) != before


def test_the_finance_grade_changes_bumped_their_definitions():
    for name in ("gaming_duty", "provider_fees", "payment_fees", "chargebacks", "deposits", "ftds", "ngr"):
        assert metrics.BY_NAME[name].version == 2, name
        assert (name, 1) in PINNED and PINNED[(name, 1)] != PINNED[(name, 2)], name


def test_tiles_and_the_catalogue_name_their_versions():
    for tile in metrics.KPI_TILES:
        assert tile.tag == metrics.BY_NAME[tile.key].tag
    assert metrics.BY_NAME["ngr"].tag == "ngr v2"
    cat = metrics.catalogue_frame()
    assert dict(zip(cat["name"], cat["version"], strict=True))["ngr"] == "v2"
