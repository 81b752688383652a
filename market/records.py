"""Frozen pydantic records built from values validated already, without validating them again.

The actions and a policy's ``Decision`` are pydantic (the actions' schema is the model tools'). A
rule-based policy makes a few actions every turn from values that are the market's own (ids from its
observation, amounts it computed in cents, texts from its templates); validating them costs more than
the rest of its turn. What they cause is still checked: the exchange applies its rules to every action,
and the ledger validates every event (and a refused action inside one) when it reads it back before
writing. The market's own records and events are msgspec Structs (``market.domain``) and need none of
this.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

# a frozen model refuses setattr, so its slots are set through their descriptors
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def build(model: type[M], values: dict[str, Any], fields_set: set[str]) -> M:
    """The record of ``model`` holding ``values`` (every field, in the model's order) with ``fields_set``
    as the names given: ``model_construct`` without its bookkeeping."""
    record = object.__new__(model)
    _set_dict(record, values)
    _set_fields_set(record, fields_set)
    _set_extra(record, None)
    _set_private(record, None)
    return record


def trusted(model: type[M], **values: Any) -> M:
    """``model(**values)`` for values that are valid already, without validating them: the same record
    (its fields in order, the defaults of those not given, the names given as its fields set). A name
    the model lacks or a required field left out raises ``TypeError``."""
    layout, given = _layout(model, tuple(values))
    return build(model, {**layout, **values}, given)  # (layout holds every field, so the order is the model's)


@cache
def shared_fields(names: frozenset[str]) -> set[str]:
    """One set of field names shared by every record that has them (a set per record would hold a few
    hundred bytes each). Safe to share: nothing changes a frozen record's set (``model_copy`` copies it
    first)."""
    return set(names)


@cache
def _layout(model: type[BaseModel], names: tuple[str, ...]) -> tuple[dict[str, object], set[str]]:
    """Every field of ``model`` in order with its default (``None`` for those in ``names``, which are
    given), and the set of ``names``; checked once per model and names given."""
    fields = model.model_fields
    unknown = [name for name in names if name not in fields]
    missing = [name for name, info in fields.items() if info.is_required() and name not in names]
    factory = [name for name, info in fields.items() if info.default_factory is not None and name not in names]
    if unknown or missing or factory:
        raise TypeError(f"{model.__name__}: unknown fields {unknown}, missing {missing}, defaults made by a "
                        f"factory {factory}")
    layout = {name: None if name in names else info.default for name, info in fields.items()}
    return layout, shared_fields(frozenset(names))
