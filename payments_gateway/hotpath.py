"""Hand-written SQL for the two hot paths, in one place, so the domain code around them reads plainly.

Each trick is measured against the ORM by the benchmark named beside it (undo it and run the benchmark again to
see what it buys); each goes through the fields' own ``get_db_prep_*`` so values are stored as the ORM would.

- :func:`select_all` — the webhook endpoints every event is queued for (``bench/sessions.py``): one query of
  the two columns needed, where the ORM's queryset took four to five times as long as the query itself.
- :func:`select_one` and :func:`insert_or_skip` — the incoming-webhook receiver (``bench/receiver.py``): one
  indexed read without the ORM's per-query overhead, and ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` (one
  statement whatever the outcome, where ``create()`` needs a savepoint and an ``IntegrityError``; half the CPU).
- :func:`update_each` and :func:`relax_durability` — the delivery workers' bookkeeping (``bench/webhooks.py``).
- :func:`shared_output_fields` — the API's session answers (``bench/sessions.py``): DRF builds a serializer's
  fields anew for every instance (a ModelSerializer inspects the model and deep-copies every declared field,
  nested serializers included): a sixth of a session's CPU. Output-only fields hold no per-request state, so they
  are built once per class; the few that read the request (``SerializerMethodField``) are called on the
  serializer at hand by the caller.
- :func:`shared_input_fields` — the session request body (``bench/sessions.py``): the same deep copy, for
  input, three quarters of the time it takes to validate a body.
- :func:`insert_together` — a new checkout session's order, address, session and ``payment.created`` event
  (``bench/sessions.py``): on PostgreSQL one statement where ``create()`` makes four round trips, each with the
  ORM's CPU around it.
- :func:`take_next` — a deposit address's index for a new checkout session (``bench/sessions.py``): one
  ``UPDATE ... SET n = n + 1 RETURNING`` (the row stays locked until the transaction ends) instead of
  ``SELECT ... FOR UPDATE`` then ``UPDATE``: a round trip less per session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection as default_connection
from django.db import connections, router
from django.db.models import Field, ForeignKey, Model
from django.db.models.signals import post_save, pre_save


def select_one(model: type[Model], columns: list[str], **where: Any) -> tuple[Any, ...] | None:
    """``SELECT columns FROM model WHERE k = v AND ...``: the first row, or None."""
    return _one_row(model, "SELECT {columns} FROM {table} WHERE {where}", where, columns=columns)


def select_all(model: type[Model], columns: list[str], **where: Any) -> list[tuple[Any, ...]]:
    """``SELECT columns FROM model WHERE k = v AND ...``: every row, each value as the model's field gives it."""
    connection = connections[model._default_manager.db]
    quote, meta = connection.ops.quote_name, model._meta
    sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(meta.db_table)}"
    if where:
        sql += f" WHERE {' AND '.join(f'{quote(k)} = %s' for k in where)}"
    fields = [meta.get_field(c) for c in columns]
    converters = [
        [*connection.ops.get_db_converters(field.cached_col), *field.get_db_converters(connection)]  # type: ignore[union-attr]
        for field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, [_concrete(meta.get_field(k)).get_db_prep_value(v, connection) for k, v in where.items()])
        rows = cursor.fetchall()
    out = []
    for row in rows:
        values = list(row)
        for i, (field, funcs) in enumerate(zip(fields, converters, strict=True)):
            for convert in funcs:
                values[i] = convert(values[i], field.cached_col, connection)  # type: ignore[union-attr]
        out.append(tuple(values))
    return out


def insert_or_skip(obj: Model, *, unless_conflict_on: tuple[str, ...] = ()) -> int | None:
    """``INSERT ... [ON CONFLICT (columns) DO NOTHING] RETURNING id``: the new row's pk, or None when a row with the
    same ``unless_conflict_on`` values is stored already (PostgreSQL, SQLite >= 3.35)."""
    model = type(obj)
    connection = connections[model._default_manager.db]
    meta, quote = model._meta, connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key and f.column]
    conflict = ""
    if unless_conflict_on:
        conflict = f" ON CONFLICT ({', '.join(quote(c) for c in unless_conflict_on)}) DO NOTHING"
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(_column(f)) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}){conflict} RETURNING {quote(_column(meta.pk))}"
    )
    values = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        row = cursor.fetchone()
    return None if row is None else row[0]


def insert_together(*objs: Model) -> None:
    """Insert the new ``objs``, in order, each pointing to the ones before it that it refers to (a foreign key
    given an unsaved object, ``CheckoutSession(order=order)``): on PostgreSQL in ONE statement, a chain of
    data-modifying ``WITH`` clauses whose foreign keys are the earlier clauses' ``RETURNING`` ids; elsewhere by
    ``save()`` one after the other. Either way each object gets its pk and foreign keys, and each gets the
    ``pre_save`` and ``post_save`` that ``save()`` sends (on PostgreSQL every ``pre_save`` before the statement,
    every ``post_save`` after it). Links are by primary key. Run inside a transaction."""
    using = router.db_for_write(type(objs[0]))
    connection = connections[using]
    if connection.vendor != "postgresql":
        for obj in objs:
            obj.save(force_insert=True, using=using)
        return
    quote = connection.ops.quote_name
    position = {id(obj): i for i, obj in enumerate(objs)}
    clauses, params, links = [], [], []
    for i, obj in enumerate(objs):
        meta = obj._meta
        pre_save.send(sender=type(obj), instance=obj, raw=False, using=using, update_fields=None)
        columns, values = [], []
        for f in meta.concrete_fields:
            if f.primary_key and getattr(obj, f.attname) is None:
                continue  # the database numbers it
            parent = f.get_cached_value(obj, None) if isinstance(f, ForeignKey) else None
            if isinstance(f, ForeignKey) and parent is not None and position.get(id(parent), i) < i:
                if not f.target_field.primary_key:
                    raise TypeError(f"insert_together() links by primary key; {f} refers to {f.target_field}")
                j = position[id(parent)]
                values.append(f"(SELECT {quote(_column(parent._meta.pk))} FROM c{j})")
                links.append((obj, f, parent))
            else:
                values.append("%s")
                params.append(f.get_db_prep_save(f.pre_save(obj, add=True), connection))
            columns.append(quote(_column(f)))
        clauses.append(
            f"c{i} AS (INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}) VALUES ({', '.join(values)}) "
            f"RETURNING {quote(_column(meta.pk))})"
        )
    picks = ", ".join(f"(SELECT {quote(_column(obj._meta.pk))} FROM c{i})" for i, obj in enumerate(objs))
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {', '.join(clauses)} SELECT {picks}", params)
        pks = cursor.fetchone()
    for obj, pk in zip(objs, pks, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, using
    for child, field, parent in links:
        setattr(child, field.name, parent)  # the id, keeping the object (setting only the id would forget it)
    for obj in objs:
        post_save.send(sender=type(obj), instance=obj, created=True, update_fields=None, raw=False, using=using)


def update_each(objs: Sequence[Model], fields: list[str], *, where: dict[str, Any], also_set: dict[str, Any]) -> None:
    """For each of ``objs``: ``UPDATE ... SET <fields from obj>, <also_set> WHERE pk = obj.pk AND <where>``.

    One statement per row sent with ``executemany`` (pipelined by psycopg 3: one round trip); ``bulk_update``
    would build a CASE expression per field and row, which costs more CPU than the HTTP request it records.
    """
    if not objs:
        return
    model = type(objs[0])
    meta, quote = model._meta, default_connection.ops.quote_name
    columns = [_concrete(meta.get_field(name)) for name in fields]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET "
        + ", ".join([f"{quote(_column(f))} = %s" for f in columns] + [f"{quote(k)} = %s" for k in also_set])
        + f" WHERE {quote(_column(meta.pk))} = %s"
        + "".join(f" AND {quote(k)} = %s" for k in where)
    )
    rows = [
        [f.get_db_prep_value(getattr(obj, f.attname), default_connection) for f in columns]
        + [*also_set.values(), obj.pk, *where.values()]
        for obj in objs
    ]
    with default_connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def relax_durability() -> None:
    """PostgreSQL: this transaction does not wait for its WAL flush.

    Only for bookkeeping whose loss in a crash repeats work and loses nothing (a delivery still pending is sent
    again; receivers deduplicate by webhook-id).
    """
    if default_connection.vendor == "postgresql":
        with default_connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def take_next(model: type[Model], column: str, **where: Any) -> int | None:
    """``UPDATE model SET column = column + 1 WHERE ... RETURNING column - 1``: the value taken, or None when no
    row matches (the caller creates it). Run inside a transaction: the row is locked until it ends."""
    sql = "UPDATE {table} SET {columns} = {columns} + 1 WHERE {where} RETURNING {columns} - 1"
    row = _one_row(model, sql, where, columns=[column])
    return None if row is None else int(row[0])


_OUTPUT_FIELDS: dict[type, list[Any]] = {}


def shared_output_fields(serializer: Any) -> list[Any]:
    """The readable fields of ``serializer``'s class, built once (by an instance without context) and shared by
    every instance: only for output, and only where each ``SerializerMethodField`` is called on the serializer at
    hand (its ``parent`` here is the template, not the current request's serializer)."""
    cls = type(serializer)
    fields = _OUTPUT_FIELDS.get(cls)
    if fields is None:
        fields = _OUTPUT_FIELDS[cls] = [f for f in cls().fields.values() if not f.write_only]
    return fields


_INPUT_FIELDS: dict[type, Any] = {}


def shared_input_fields(serializer: Any) -> Any:
    """The fields of ``serializer``'s class, built and bound once (to an instance without data or context) and
    shared by every instance: only for a request body whose fields read nothing of the request (no context, no
    instance), so validating with them leaves nothing behind (the errors and validated data stay on the serializer
    at hand)."""
    from rest_framework.utils.serializer_helpers import BindingDict

    cls = type(serializer)
    fields = _INPUT_FIELDS.get(cls)
    if fields is None:
        template = cls()
        fields = BindingDict(template)
        for name, field in template.get_fields().items():
            fields[name] = field
        _INPUT_FIELDS[cls] = fields
    return fields


def _one_row(model: type[Model], template: str, where: dict[str, Any], *, columns: list[str]) -> tuple | None:
    """Run ``template`` (``{table}``, ``{columns}`` and ``{where}`` filled in, quoted) and return its first row."""
    connection = connections[model._default_manager.db]
    quote = connection.ops.quote_name
    sql = template.format(
        table=quote(model._meta.db_table),
        columns=", ".join(quote(c) for c in columns),
        where=" AND ".join(f"{quote(k)} = %s" for k in where),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(where.values()))
        return cursor.fetchone()


def _concrete(field: Any) -> Field:
    assert isinstance(field, Field)  # a column, not a relation
    return field


def _column(field: Any) -> str:
    assert field is not None and field.column  # a concrete column
    return field.column
