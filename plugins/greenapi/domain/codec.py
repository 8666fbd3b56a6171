"""One codec for the records that cross a task boundary: typed in Python, plain JSON in XCom.

Airflow 3 only deserialises the classes it is told to trust (``[core]
allowed_deserialization_classes``, by default ``airflow.*``), so a record leaves a task as JSON and
is read back into its class by the next one. pydantic does both from the dataclasses' own type
hints (enums as their values, datetimes in ISO 8601, tuples as lists), so no record writes its own
``to_dict``/``from_dict``: :class:`Record` gives every record the same two, built on
:func:`encode` and :func:`decode`.
"""

from __future__ import annotations

from typing import Any, Generic, Self, TypeVar

from pydantic import TypeAdapter

T = TypeVar("T")


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    """pydantic's reader and writer of ``kind``, built once (building one takes milliseconds)."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def encode(value: Any, kind: Any = None) -> Any:
    """``value`` as plain JSON data (dicts, lists, strings, numbers, booleans, None).

    ``kind``: its type, when it is not the value's own class (``list[Finding]``, ``dict[str, X]``)."""
    adapter: TypeAdapter[Any] = _adapter(type(value) if kind is None else kind)
    return adapter.dump_python(value, mode="json")


def decode(kind: type[T] | Any, raw: Any) -> T:
    """``raw`` (what :func:`encode` made, or XCom gave back) read into ``kind``; a value that does
    not fit raises pydantic's ``ValidationError`` naming the field."""
    adapter: TypeAdapter[T] = _adapter(kind)
    return adapter.validate_python(raw)


class XCom(Generic[T]):
    """The JSON of a ``T`` as XCom holds it: the annotation of a TaskFlow argument or return value,
    so that the graph says what crosses each edge (``decode(T, value)`` reads it back). A class of
    its own, not a ``dict``: Airflow would push each key of a task returning a ``dict`` again."""


class Record:
    """A dataclass that crosses XCom: ``to_dict()`` and ``from_dict()`` through the codec."""

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON data, its documented shape."""
        return encode(self)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        """The record back from :meth:`to_dict`'s JSON."""
        return decode(cls, raw)
