"""Queries compiled once per process, for the few that hot paths run many times a second.

Building and compiling a queryset of subqueries costs Django more CPU than the database spends
answering it (2-3 ms of a 5-10 ms request). `prepare` compiles one with stand-in values that no
real value has, finds each stand-in among the SQL's parameters, and keeps the SQL; `Prepared.params`
then puts a call's own values where the stand-ins were, in the form the database takes them (on
SQLite Django hands a datetime over as text, a UUID as hex). The rows are those of the queryset
itself, which tests check against it (tests/test_prepared.py).
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import QuerySet


@dataclass(frozen=True)
class _Slot:
    index: int  # which of a call's values goes here
    form: Callable[[Any], Any]  # that value in the form the compiler gave its stand-in


@dataclass(frozen=True)
class _Fixed:
    value: Any  # a parameter of the query's own (a status, a flag), the same for every call


@dataclass(frozen=True)
class Prepared:
    """A query's SQL, and where each of its parameters comes from."""

    sql: str
    slots: tuple[_Slot | _Fixed, ...]

    def params(self, values: Sequence[Any]) -> list[Any]:
        """The SQL's parameters for a call's `values` (in the order of the stand-ins it was prepared with)."""
        return [slot.form(values[slot.index]) if isinstance(slot, _Slot) else slot.value for slot in self.slots]

    def row(self, values: Sequence[Any]) -> dict[str, Any] | None:
        """The first row for `values`, by column name (a `values()` queryset names them), or None."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql, self.params(values))
            found = cursor.fetchone()
            return None if found is None else dict(zip([c[0] for c in cursor.description], found, strict=True))


def prepare(queryset: QuerySet[Any], stand_ins: Sequence[int | datetime | uuid.UUID]) -> Prepared:
    """`queryset`'s SQL on the current database, built with `stand_ins` in place of a call's values.

    Each stand-in must be a value no call has (a negative number, or, for a column of positive
    numbers, the largest it takes, since Django finds a lookup outside a column's range empty and
    writes no SQL; a datetime of 1900; a UUID of zeros but its last digit) and must reach the
    parameters: one that does not, or that the compiler wrote into the SQL itself, is an error here
    rather than a wrong row later.
    """
    sql, params = queryset.query.get_compiler(connection=connection).as_sql()
    forms = _forms(stand_ins)
    slots = tuple(_slot(param, forms) for param in params)
    missing = set(range(len(stand_ins))) - {slot.index for slot in slots if isinstance(slot, _Slot)}
    if missing:
        raise RuntimeError(f"stand-ins {sorted(missing)} are not among the query's parameters: {params!r}")
    return Prepared(sql, slots)


def _forms(stand_ins: Sequence[int | datetime | uuid.UUID]) -> dict[tuple[type, Any], _Slot]:
    """Each stand-in's possible forms as a parameter, keyed by type and value (True is not 1)."""
    forms: dict[tuple[type, Any], _Slot] = {}
    for index, value in enumerate(stand_ins):
        shapes: list[Callable[[Any], Any]] = [_same]
        if isinstance(value, datetime):
            shapes.append(connection.ops.adapt_datetimefield_value)
        elif isinstance(value, uuid.UUID):
            shapes += [_hex, str]
        for shape in shapes:
            form = shape(value)
            forms.setdefault((type(form), form), _Slot(index, shape))
    return forms


def _slot(param: Any, forms: dict[tuple[type, Any], _Slot]) -> _Slot | _Fixed:
    """Where `param` comes from: a stand-in, or the query itself. A number may come typed (PostgreSQL's
    driver has Int4 for a Value of an IntegerField): a call's number then goes in with that type."""
    found = forms.get((type(param), param))
    if found is None and isinstance(param, int) and not isinstance(param, bool):
        plain = forms.get((int, int(param)))
        found = None if plain is None else _Slot(plain.index, type(param))
    return _Fixed(param) if found is None else found


def _same(value: Any) -> Any:
    return value


def _hex(value: uuid.UUID) -> str:
    return value.hex
