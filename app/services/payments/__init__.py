"""Money that staff move or decide: balance adjustments (rules / reads / writes: four eyes and their approval
queue), the withdrawal queue (`queue.py`, flags in `risk.py`) and its decisions (`decisions.py`), chargebacks
(`chargebacks.py`) and payment search (`search.py`)."""
