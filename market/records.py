"""Frozen pydantic records built from values validated already, without validating them again.

A rule-based policy answers every turn with a ``Decision`` (pydantic: it holds actions, whose schema
is the model tools') of actions validated as they were made; validating them again costs more than
the rest of its work. The market's own records and events are msgspec Structs (``market.domain``)
and need none of this.
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


@cache
def shared_fields(names: frozenset[str]) -> set[str]:
    """One set of field names shared by every record that has them (a set per record would hold a few
    hundred bytes each). Safe to share: nothing changes a frozen record's set (``model_copy`` copies it
    first)."""
    return set(names)
