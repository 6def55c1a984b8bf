"""The hand-built warehouse fixture: two brands (EUR/MT, GBP/GB), a duty-rate change on 2026-01-03,
an FX change on 2026-01-03, void/open bets, pending/declined/chargeback payments (a deposit of 01-02 charged
back on 01-04, the player's FTD; a GBP deposit of 01-10 charged back on 01-11 with a chargeback fee), bonuses,
a test account. The latest event (the data's as-of instant) is bet 11, settled 2026-01-12 10:00.

The expected figures in test_metrics.py are computed by hand from exactly these rows.
"""

from __future__ import annotations

import duckdb

from warehouse.schema import create_meta_schema, create_raw_schema

ROWS = """
INSERT INTO raw.operators VALUES
 (1, 'alpha', 'Alpha Casino', 'Alpha Ltd', 'EUR', 'MT', 'active', '2025-01-01', 100, '2025-01-01', '2025-01-01'),
 (2, 'beta', 'Beta Bet', 'Beta plc', 'GBP', 'GB', 'paused', '2025-01-01', 100, '2025-01-01', '2025-01-01');
INSERT INTO raw.countries VALUES
 ('MT', 'MLT', 'Malta', 'Southern Europe', false), ('DE', 'DEU', 'Germany', 'Western Europe', false),
 ('GB', 'GBR', 'United Kingdom', 'Northern Europe', false);
INSERT INTO raw.fx_rates VALUES
 ('2026-01-01', 'GBP', 1.20000000), ('2026-01-03', 'GBP', 1.10000000), ('2026-01-01', 'EUR', 1);
INSERT INTO raw.tax_rates VALUES
 (1, 'MT', 'ggr', 0.0500, '2025-01-01', NULL),
 (2, 'GB', 'ggr', 0.2100, '2025-01-01', '2026-01-03'),
 (3, 'GB', 'ggr', 0.4000, '2026-01-03', NULL);
INSERT INTO raw.providers VALUES (1, 'ProvOne', 0.1000), (2, 'ProvTwo', 0.1500);
INSERT INTO raw.games VALUES
 (1, 1, 'g1', 'Gold Slot', 'slots', 0.9600, true, '2025-01-01', '2025-01-01'),
 (2, 2, 'g2', 'Live Roulette', 'live', 0.9730, true, '2025-01-01', '2025-01-01');
INSERT INTO raw.affiliates VALUES
 (1, 'AffOne', 'cpa', 50, 20, 0, NULL, true, '2025-01-01', '2025-01-01');
INSERT INTO raw.players VALUES
 (1, 1, 'ann', 'ann@example.com', '+35611', 'Ann', 'Able', 'MT', '1990-01-01', '2026-01-01 10:00', NULL, NULL,
  'active', NULL, 'verified', 10, 1, NULL, 'c1', 'affiliate', false, 35.50, 5.00, 1, '2026-01-04'),
 (2, 1, 'bob', 'bob@example.com', NULL, 'Bob', 'Baker', 'DE', '1985-05-05', '2026-01-02 09:00', NULL, NULL,
  'active', NULL, 'pending', 40, NULL, NULL, NULL, 'organic', false, 12.00, 0, 1, '2026-01-04'),
 (3, 2, 'cat', 'cat@example.co.uk', NULL, 'Cat', 'Cole', 'GB', '1992-02-02', '2026-01-01 12:00', NULL, NULL,
  'active', NULL, 'verified', 5, NULL, NULL, NULL, 'paid_search', false, 100.00, 0, 1, '2026-01-04'),
 (4, 2, 'dan', 'dan@example.co.uk', NULL, 'Dan', 'Dyer', 'GB', '1970-03-03', '2026-01-03 08:00', NULL, NULL,
  'suspended', NULL, 'none', 70, NULL, NULL, NULL, 'organic', false, 20.00, 0, 1, '2026-01-04'),
 (5, 1, 'qa_test', 'qa@alpha.test', NULL, 'Q', 'A', 'MT', '1990-01-01', '2026-01-01 08:00', NULL, NULL,
  'active', NULL, 'verified', 0, NULL, NULL, NULL, 'organic', true, 999.00, 0, 1, '2026-01-04'),
 (6, 2, 'eve', 'eve@example.co.uk', NULL, 'Eve', 'Eddy', 'GB', '2000-04-04', '2026-01-04 18:00', NULL, NULL,
  'active', NULL, 'none', 0, NULL, NULL, NULL, 'organic', false, 0, 0, 1, '2026-01-04');
INSERT INTO raw.sessions VALUES
 (1, 1, 1, '2026-01-03 20:00', '2026-01-03 21:00', '1.2.3.4', 'd1', 'MT', 'ok', '2026-01-03'),
 (2, 1, 1, '2026-01-04 20:00', NULL, '1.2.3.4', 'd1', 'MT', 'failed_password', '2026-01-04');
INSERT INTO raw.bets VALUES
 (1, 1, 1, 1, NULL, 10.00, 0, 4.00, 0, 0.10, 'settled', '2025-12-31 23:59', '2026-01-01 00:01', '2026-01-01'),
 (2, 1, 1, 2, NULL, 20.00, 0, 30.00, 0, 0, 'settled', '2026-01-02 10:00', '2026-01-02 10:01', '2026-01-02'),
 (3, 2, 1, 1, NULL, 5.00, 2.00, 0, 1.00, 0, 'settled', '2026-01-02 11:00', '2026-01-02 11:00', '2026-01-02'),
 (4, 2, 1, 1, NULL, 100.00, 0, 0, 0, 0, 'void', '2026-01-02 12:00', NULL, '2026-01-02'),
 (5, 1, 1, 1, NULL, 50.00, 0, 0, 0, 0, 'open', '2026-01-03 12:00', NULL, '2026-01-03'),
 (6, 5, 1, 1, NULL, 1000.00, 0, 0, 0, 0, 'settled', '2026-01-02 12:00', '2026-01-02 12:00', '2026-01-02'),
 (7, 2, 1, 2, NULL, 0, 3.00, 0, 0, 0, 'settled', '2026-01-03 09:00', '2026-01-03 09:00', '2026-01-03'),
 (8, 3, 2, 1, NULL, 10.00, 0, 2.00, 0, 0.20, 'settled', '2026-01-02 13:00', '2026-01-02 13:00', '2026-01-02'),
 (9, 3, 2, 2, NULL, 40.00, 0, 10.00, 0, 0, 'settled', '2026-01-03 14:00', '2026-01-03 14:00', '2026-01-03'),
 (10, 4, 2, 1, NULL, 8.00, 0, 12.00, 0, 0, 'settled', '2026-01-04 15:00', '2026-01-04 15:00', '2026-01-04'),
 (11, 1, 1, 1, NULL, 1.00, 0, 0, 0, 0, 'settled', '2026-01-12 10:00', '2026-01-12 10:00', '2026-01-12');
INSERT INTO raw.payments VALUES
 (1, 1, 1, 'deposit', 100.00, 'EUR', 'card', 'c', 2.00, 'approved', '2026-01-01 10:05', '2026-01-01 10:05', NULL, 0),
 (2, 1, 1, 'deposit', 50.00, 'EUR', 'card', 'c', 1.00, 'approved', '2026-01-02 10:05', '2026-01-02 10:05', NULL, 0),
 (3, 2, 1, 'deposit', 30.00, 'EUR', 'ewallet', 'w', 0, 'declined', '2026-01-02 09:10', '2026-01-02 09:10', NULL, 0),
 (4, 2, 1, 'deposit', 20.00, 'EUR', 'card', 'c2', 0.40, 'chargeback', '2026-01-02 09:20', '2026-01-04 08:00',
  '2026-01-04 08:00', 0),
 (5, 2, 1, 'deposit', 40.00, 'EUR', 'card', 'c2', 0.80, 'approved', '2026-01-03 09:00', '2026-01-03 09:00', NULL, 0),
 (6, 1, 1, 'withdrawal', 25.00, 'EUR', 'bank_transfer', 'b', 0.50, 'approved', '2026-01-03 11:00', '2026-01-03 12:00',
  NULL, 0),
 (7, 1, 1, 'withdrawal', 60.00, 'EUR', 'bank_transfer', 'b', 0, 'pending', '2026-01-04 10:00', '2026-01-04 10:00',
  NULL, 0),
 (8, 5, 1, 'deposit', 500.00, 'EUR', 'card', 't', 5.00, 'approved', '2026-01-02 08:00', '2026-01-02 08:00', NULL, 0),
 (9, 3, 2, 'deposit', 200.00, 'GBP', 'card', 'k', 4.00, 'approved', '2026-01-01 12:10', '2026-01-01 12:10', NULL, 0),
 (10, 3, 2, 'withdrawal', 50.00, 'GBP', 'ewallet', 'e', 0, 'pending', '2026-01-02 16:00', '2026-01-02 16:00', NULL, 0),
 (11, 4, 2, 'deposit', 10.00, 'GBP', 'card', 'k4', 0.20, 'approved', '2026-01-03 08:30', '2026-01-03 08:30', NULL, 0),
 (12, 4, 2, 'withdrawal', 5.00, 'GBP', 'card', 'k4', 0, 'declined', '2026-01-04 09:00', '2026-01-04 09:00', NULL, 0),
 (13, 3, 2, 'deposit', 30.00, 'GBP', 'card', 'k', 0.60, 'chargeback', '2026-01-10 12:00', '2026-01-11 09:00',
  '2026-01-11 09:00', 1.50);
INSERT INTO raw.bonuses VALUES
 (1, 1, 1, 'welcome', 20.00, 100, 100, 'converted', '2026-01-01 11:00', '2026-01-03 18:00', NULL, 15.00, '2026-01-03'),
 (2, 2, 1, 'reload', 10.00, 50, 5, 'forfeited', '2026-01-02 11:00', NULL, '2026-01-03 11:00', 0, '2026-01-03'),
 (3, 3, 2, 'cashback', 5.00, 0, 0, 'converted', '2026-01-04 10:00', '2026-01-04 10:00', NULL, 5.00, '2026-01-04');
INSERT INTO meta.snapshot VALUES ('snap-1', '2026-01-05 00:00', '2026-01-04 23:59', 'run-1');
"""


def load_fixture(con: duckdb.DuckDBPyConnection) -> None:
    """Create raw + meta schemas and insert the hand-built rows."""
    create_raw_schema(con)
    create_meta_schema(con)
    con.execute(ROWS)
