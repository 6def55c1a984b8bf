"""Small reads the analytics pages need besides the figures: the options of their filters and the metric
catalogue. Every read goes through the gateway with the caller's brand scope.
"""

from __future__ import annotations

import polars as pl

from warehouse import metrics
from warehouse.gateway import Gateway


def brands_list(gw: Gateway, *, scope: frozenset[int] | None) -> pl.DataFrame:
    """The brands the caller may see: brand_id, code, name, currency, status (by id)."""
    return gw.query("SELECT brand_id, code, name, currency, status FROM {brands} ORDER BY brand_id", brands=scope)


def countries_list(gw: Gateway, *, scope: frozenset[int] | None) -> pl.DataFrame:
    """Countries that have players in the caller's brands: country_code, name, region, iso3 (by name)."""
    sql = """
    SELECT c.country_code, c.name, c.region, c.iso3 FROM {countries} c
    WHERE c.country_code IN (SELECT DISTINCT country_code FROM {cohort_player})
    ORDER BY c.name
    """
    return gw.query(sql, brands=scope)


def affiliates_list(gw: Gateway, *, scope: frozenset[int] | None) -> pl.DataFrame:
    """Affiliates that brought players to the caller's brands: affiliate_id, affiliate (by name)."""
    sql = """
    SELECT DISTINCT affiliate_id, affiliate FROM {cohort_player}
    WHERE affiliate_id IS NOT NULL ORDER BY affiliate, affiliate_id
    """
    return gw.query(sql, brands=scope)


def channels_list(gw: Gateway, *, scope: frozenset[int] | None) -> list[str]:
    """Acquisition channels present in the caller's brands."""
    df = gw.query("SELECT DISTINCT channel FROM {cohort_player} WHERE channel IS NOT NULL ORDER BY 1", brands=scope)
    return df["channel"].to_list()


def metric_catalogue() -> pl.DataFrame:
    """Every metric definition (name, label, unit, formula, components, included, excluded, how computed)."""
    return metrics.catalogue_frame()
