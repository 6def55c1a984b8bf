"""Expected source schema (from `app.models`), drift detection, and the PostgreSQL → DuckDB type mapping.

Drift is checked against the PostgreSQL catalog (`format_type`) at the start of every run, in the same
snapshot the data is read from. A column added, dropped or retyped in the source fails the run with a
message naming the table and the column; nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy.dialects import postgresql

from pipelines.ingest.specs import TableSpec


class SchemaDriftError(RuntimeError):
    """The source schema differs from the expected one; the message names table and column."""


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # normalised format_type() text, e.g. "numeric(18,2)"

    @property
    def duck_type(self) -> str:
        return duck_type(self.pg_type)

    def select_expr(self) -> str:
        """A DuckDB expression reading this column from a scanner/postgres_query row into its warehouse type."""
        q = quote_ident(self.name)
        if self.pg_type == "timestamp with time zone":
            # naive UTC TIMESTAMP: the instant's microseconds reinterpreted (20x faster than timezone('UTC', x))
            return f"make_timestamp(epoch_us({q})) AS {q}"
        return f"CAST({q} AS {self.duck_type}) AS {q}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def normalise_pg_type(text: str) -> str:
    """One spelling for a PostgreSQL type: 'VARCHAR(16)' and 'character varying(16)' compare equal."""
    t = text.strip().lower().replace(", ", ",")
    t = re.sub(r"^varchar\b", "character varying", t)
    return {"timestamptz": "timestamp with time zone", "int": "integer", "bool": "boolean"}.get(t, t)


_SIMPLE = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "smallint": "SMALLINT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "text": "VARCHAR",
    "jsonb": "JSON",
    "json": "JSON",
    "double precision": "DOUBLE",
    "real": "FLOAT",
    "timestamp with time zone": "TIMESTAMP",
    "timestamp without time zone": "TIMESTAMP",
}


def duck_type(pg_type: str) -> str:
    """The warehouse (DuckDB) type for a normalised PostgreSQL type."""
    if pg_type.endswith("[]"):
        return duck_type(pg_type[:-2]) + "[]"
    if pg_type in _SIMPLE:
        return _SIMPLE[pg_type]
    if pg_type.startswith("character varying") or pg_type.startswith("character("):
        return "VARCHAR"
    m = re.fullmatch(r"numeric\((\d+),(\d+)\)", pg_type)
    if m:
        return f"DECIMAL({m.group(1)},{m.group(2)})"
    raise SchemaDriftError(f"no warehouse type for PostgreSQL type {pg_type!r}")


@lru_cache(maxsize=1)
def _model_columns() -> dict[str, tuple[Column, ...]]:
    from app.models import Base

    dialect = postgresql.dialect()
    return {
        table.name: tuple(Column(c.name, normalise_pg_type(c.type.compile(dialect=dialect))) for c in table.columns)
        for table in Base.metadata.sorted_tables
    }


def expected_columns(table: str) -> tuple[Column, ...]:
    """Every column the source table must have, in model order."""
    try:
        return _model_columns()[table]
    except KeyError:
        raise SchemaDriftError(f"table {table!r} has no model in app.models") from None


def warehouse_columns(spec: TableSpec) -> tuple[Column, ...]:
    """The columns copied into raw.<table>: the expected ones minus the excluded secrets."""
    return tuple(c for c in expected_columns(spec.name) if c.name not in spec.exclude)


# The catalog query (run through postgres_query in the run's snapshot).
CATALOG_SQL = """
SELECT c.relname AS table_name, a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS pg_type
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
"""


def check_drift(specs: tuple[TableSpec, ...], catalog: list[tuple[str, str, str]]) -> None:
    """Raise SchemaDriftError listing every difference between the source catalog and the expected schema."""
    source: dict[str, dict[str, str]] = {}
    for table, column, pg_type in catalog:
        source.setdefault(table, {})[column] = normalise_pg_type(pg_type)
    problems: list[str] = []
    for spec in specs:
        actual = source.get(spec.name)
        if actual is None:
            problems.append(f"table {spec.name}: missing in the source")
            continue
        expected = {c.name: c.pg_type for c in expected_columns(spec.name)}
        for name, pg_type in expected.items():
            if name not in actual:
                problems.append(f"table {spec.name}: column {name} ({pg_type}) was dropped in the source")
            elif actual[name] != pg_type:
                problems.append(f"table {spec.name}: column {name} changed type from {pg_type} to {actual[name]}")
        for name, pg_type in actual.items():
            if name not in expected:
                problems.append(f"table {spec.name}: column {name} ({pg_type}) was added in the source")
    if problems:
        raise SchemaDriftError(
            "schema drift, the warehouse is left unchanged: "
            + "; ".join(problems)
            + ". Update app/models.py (and the ingestion spec) to the new schema, then run ingest --full."
        )
