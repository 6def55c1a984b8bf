"""The implementations of the warehouse read API, grouped by job (`common`: filters, errors, scope and money
helpers; `overview`, `games`, `regions`, `operators`, `cohorts`, `players`; `options`: filter options and
the metric catalogue). Callers import them through the facade `warehouse.api`.
"""
