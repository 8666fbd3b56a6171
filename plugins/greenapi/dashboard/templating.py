"""The dashboard's Jinja2 environment: the templates in ``templates/``, and the filters that write values
for a person. HTML and SVG templates are autoescaped: a value from the database is text, never markup."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from greenapi.domain.incidents import format_duration

if TYPE_CHECKING:
    from collections.abc import Iterable
    from zoneinfo import ZoneInfo


def local(at: datetime | None, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A time in ``zone`` (a dash for none)."""
    return "—" if at is None else at.astimezone(zone).strftime(fmt)


def stamp(at: datetime | None, zone: ZoneInfo) -> str:
    """A time standing alone in a sentence: it names its zone (CEST, +04, ...)."""
    return local(at, zone, "%Y-%m-%d %H:%M:%S %Z")


def ago(at: datetime | None, now: datetime) -> str:
    """How long before ``now`` a moment was, in words (empty for none)."""
    return "" if at is None else f"{format_duration(now - at, 'en')} ago"


def duration(seconds: Any) -> str:
    """A number of seconds as a duration in words."""
    return format_duration(timedelta(seconds=int(seconds)), "en")


def pct(value: Any) -> str:
    """A percentage with two decimals (a dash for none)."""
    return "—" if value is None else f"{float(value):.2f} %"


def ms(value: Any) -> str:
    """A response time in whole milliseconds (a dash for none)."""
    return "—" if value is None else f"{int(value)} ms"


def thousands(value: int) -> str:
    """A count with thousands separated."""
    return f"{value:,}"


def px(value: float) -> str:
    """A coordinate of a chart, to a tenth of a pixel."""
    return f"{value:.1f}"


def points(xys: Iterable[tuple[float, float]]) -> str:
    """The ``points`` of an SVG polyline."""
    return " ".join(f"{px(x)},{px(y)}" for x, y in xys)


# None prints as nothing (an absent connection id, sender, ...); StrictUndefined makes a name the data
# does not have an error instead of an empty cell: optional keys are read with .get() in the templates.
ENV = Environment(
    loader=PackageLoader("greenapi.dashboard", "templates"),
    autoescape=select_autoescape(["html", "svg", "xml"]),
    undefined=StrictUndefined,
    finalize=lambda value: "" if value is None else value,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters.update(local=local, stamp=stamp, ago=ago, duration=duration, pct=pct, ms=ms, thousands=thousands,
                   px=px, points=points)
