"""The activity money model's parameters and the records a chunk of simulated players produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from app.models import PAYMENT_STATUSES

SPORTS = 4


HIT_P = np.array([0.28, 0.46, 0.46, 0.42, 0.45])  # by category: slots, live, table, crash, sports


WIN_SIGMA = np.array([1.3, 0.35, 0.3, 0.8, 0.35])


STAKE_FACTOR = np.array([1.0, 1.6, 1.4, 0.8, 3.5])


VOID_P = 0.003


WIN_CAP = 5000  # the largest win, in stakes


CALIBRATION = (0.75, 1.35)  # bounds of the per brand × category win scale (see _Chunk._calibrated)


BONUS_WAGER = np.array([3.0, 4.0, 3.0, 0.0, 1.0])  # wagering requirement (in the session) as a multiple of the amount


CASHBACK_UNITS = (2, 20)  # a cashback bonus: this many EUR-like units (low, high)


PAY_STATUSES = PAYMENT_STATUSES  # codes below index into it


PENDING, APPROVED, DECLINED, FAILED, CHARGEBACK = (
    PAY_STATUSES.index(s) for s in ("pending", "approved", "declined", "failed", "chargeback")
)


DEP_FEE_RATE = np.array([0.018, 0.005, 0.025, 0.010, 0.040])  # by method


@dataclass
class Ids:
    """Next free id of each generated table (ids are explicit so chunks can be loaded independently)."""

    session: int = 1
    bet: int = 1
    payment: int = 1
    bonus: int = 1
    ledger: int = 1


@dataclass
class ChunkResult:
    tables: dict[str, pl.DataFrame]
    cash: np.ndarray  # final balances per player of the chunk (cents)
    bonus: np.ndarray
    first_deposit: np.ndarray  # µs of the first approved deposit, 0 if none
    ftd_amount: np.ndarray  # cents
    deposits_first_day: np.ndarray  # approved deposits within 24 h of the first
    deposited_total: np.ndarray  # cents of approved deposits
    last_activity: np.ndarray  # µs of the player's last balance movement or login
    counts: dict[str, int] = field(default_factory=dict)
