"""Charts drawn as SVG on the server: no script, no asset from the internet.

One picture per time window: the mean response time as a line (top panel), the failing checks as
bars (bottom panel), reboots as dashed vertical lines and delivered alerts as triangles. The geometry
is computed here, the markup is ``templates/chart.svg``. A smaller picture, ``templates/queue.svg``,
draws the outgoing queue's length over 24 h, with its alert threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from greenapi.dashboard.templating import ENV
from greenapi.domain.incidents import format_duration

if TYPE_CHECKING:
    from collections.abc import Sequence
    from zoneinfo import ZoneInfo

# Drawn about 1:1 at half of a 1,400-pixel-wide page, where the page puts two charts side by side.
WIDTH, HEIGHT = 720, 270
# Rows from the top: the title, the legend, then the alert marks just above TOP: marks are drawn
# from LEFT to WIDTH - RIGHT and from TOP - 8 to the panels' bottom, text stays out of that area.
LEFT, RIGHT, TOP = 56, 12, 42
TITLE_Y, LEGEND_Y = 14, 29
LINE_PANEL = (TOP, 150)  # y range of the response-time panel
BAR_PANEL = (170, 234)  # y range of the failing-checks panel
AXIS_Y = 252
# A title's character is about this wide (12 px bold, in the chart's units): a longer title (a long
# time zone, an instance's id) is squeezed into the chart's width rather than cut at its edge.
TITLE_CHAR = 6.8
# The queue chart: one panel, the same width and time axis.
QUEUE_HEIGHT = 158
QUEUE_PANEL = (TOP, 122)
QUEUE_AXIS_Y = 140


# Data covering this share of a window fills it (its first bucket may start a little after the window).
FULL = 0.95


@dataclass(frozen=True)
class Frame:
    """The time axis of a chart: from ``since`` to ``until``."""
    since: datetime
    until: datetime

    @classmethod
    def fitted(cls, window: timedelta, until: datetime, first: datetime | None, minimum: timedelta) -> Frame:
        """The time axis of a chart: the whole ``window`` once the data (nearly) fills it; on a fresh
        install, from the ``first`` data (and at least ``minimum``), so recent points are spread
        readably instead of squeezed against the right edge of an empty window."""
        since = until - window
        if first is None or until - first >= FULL * window:
            return cls(since, until)
        return cls(max(since, min(first, until - minimum)), until)

    @property
    def span(self) -> timedelta:
        """The axis' length in time."""
        return self.until - self.since

    def x(self, at: datetime) -> float:
        """The horizontal position of moment ``at`` on the chart (clamped to the axis)."""
        span = (self.until - self.since).total_seconds() or 1.0
        share = (at - self.since).total_seconds() / span
        return LEFT + max(0.0, min(1.0, share)) * (WIDTH - LEFT - RIGHT)


def title_length(title: str) -> float | None:
    """The width to squeeze ``title`` into (its ``textLength``), or None when it fits as it is."""
    room = WIDTH - LEFT - RIGHT
    return room if len(title) * TITLE_CHAR > room else None


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^n at or above ``value`` (an axis top)."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 < value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return factor * step
    return 10 * step


# Steps of the time axis, each dividing the next unit (hour, day): the first giving at most MAX_TICKS.
TICK_STEPS = [timedelta(minutes=m) for m in (5, 10, 15, 30)] + [timedelta(hours=h) for h in (1, 2, 3, 6, 12)] + [
    timedelta(days=d) for d in (1, 2, 3, 7)]
MAX_TICKS = 10


def _ticks(frame: Frame, zone: ZoneInfo) -> list[tuple[float, str]]:
    """Ticks at round local times (wall-clock steps, so 00:00, 03:00, ... across a DST change)."""
    step = next((s for s in TICK_STEPS if frame.span / s <= MAX_TICKS), TICK_STEPS[-1])
    fmt = "%H:%M" if step < timedelta(days=1) else "%d/%m"
    local = frame.since.astimezone(zone)
    if step < timedelta(days=1):
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        minutes = int(step.total_seconds() // 60)
        first = midnight + timedelta(minutes=(local.hour * 60 + local.minute) // minutes * minutes)
    else:
        first = local.replace(hour=0, minute=0, second=0, microsecond=0)
    ticks, at = [], first
    while at <= frame.until:
        if at >= frame.since:
            ticks.append((frame.x(at), at.astimezone(zone).strftime(fmt)))
        at = (at.astimezone(zone) + step).astimezone(zone)
    return ticks


def _duration(span: timedelta) -> str:
    if span >= timedelta(days=2):
        hours = span.seconds // 3600
        return f"{span.days} days" + (f" {hours} h" if hours else "")
    if not span % timedelta(hours=1):
        hours = span // timedelta(hours=1)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return format_duration(span, "en")


def _buckets(bucket: timedelta) -> str:
    return "hourly buckets" if bucket == timedelta(hours=1) else f"{_duration(bucket)} buckets"


def title(frame: Frame, window: timedelta, bucket: timedelta, zone: ZoneInfo, instance: str | None = None) -> str:
    """What a chart shows: its span (and whether the data fills the window yet), buckets, time zone."""
    span = f"Last {_duration(frame.span)}"
    if frame.span < window:
        span += f" (all the data so far; the full window is {_duration(window)})"
    return f"{span}, {_buckets(bucket)}, times in {zone.key}" + (f" — {instance}" if instance else "")


def timeline(
    *,
    title: str,
    frame: Frame,
    buckets: Sequence[dict[str, Any]],
    bucket: timedelta,
    reboots: Sequence[dict[str, Any]],
    alerts: Sequence[dict[str, Any]],
    mark_bucket: timedelta,
    zone: ZoneInfo,
) -> str:
    """The SVG of one window (``templates/chart.svg``). ``buckets`` have ``at``, ``mean_ms``, ``failing``."""
    top_ms = _nice_max(max((float(b["mean_ms"]) for b in buckets if b["mean_ms"] is not None), default=0.0))
    top_fail = _nice_max(max((float(b["failing"]) for b in buckets), default=0.0))
    (l0, l1), (b0, b1) = LINE_PANEL, BAR_PANEL
    bar_width = max(1.0, frame.x(frame.since + bucket) - frame.x(frame.since) - 0.5)

    def when(at: datetime) -> str:
        return at.astimezone(zone).strftime("%d/%m %H:%M")

    def named(mark: dict[str, Any]) -> str:
        return ", ".join(map(str, mark["instances"])) + (" …" if mark["count"] > len(mark["instances"]) else "")

    # A label at either end stays in the picture.
    ticks = [{"x": x, "label_x": min(max(x, LEFT), WIDTH - 16), "label": label} for x, label in _ticks(frame, zone)]
    lines: list[list[tuple[float, float]]] = [[]]  # the line breaks where a bucket has no response time
    for b in buckets:
        if b["mean_ms"] is None:
            lines.append([])
        else:
            lines[-1].append((frame.x(b["at"] + bucket / 2), l1 - (l1 - l0) * float(b["mean_ms"]) / top_ms))
    bars = []
    for b in buckets:
        if b["failing"]:
            height, x = (b1 - b0) * float(b["failing"]) / top_fail, frame.x(b["at"])
            bars.append({"x": x, "y": b1 - height, "height": height, "when": when(b["at"]), "failing": b["failing"],
                         # the current bucket ends now, at the right edge
                         "width": max(1.0, min(bar_width, WIDTH - RIGHT - x))})
    return ENV.get_template("chart.svg").render(
        title=title, title_length=title_length(title), width=WIDTH, height=HEIGHT, left=LEFT, right=RIGHT,
        title_y=TITLE_Y, legend_y=LEGEND_Y,
        axis_y=AXIS_Y,
        line_top=l0, line_bottom=l1, bar_top=b0, bar_bottom=b1, top_ms=top_ms, top_fail=top_fail, ticks=ticks,
        lines=[points for points in lines if points], bars=bars,
        reboots=[{**r, "x": frame.x(r["at"] + mark_bucket / 2), "when": when(r["at"]), "names": named(r)}
                 for r in reboots],
        alerts=[{**a, "x": frame.x(a["at"] + mark_bucket / 2), "when": when(a["at"]), "names": named(a)}
                for a in alerts],
    )


def queue_chart(
    *,
    title: str,
    frame: Frame,
    buckets: Sequence[dict[str, Any]],
    bucket: timedelta,
    threshold: int,
    zone: ZoneInfo,
) -> str:
    """The SVG of the outgoing queue (``templates/queue.svg``): ``buckets`` have ``at`` and ``max_queue``.
    The line breaks where a bucket has no reading (no instance authorized, or its queue not read);
    buckets at or above ``threshold`` are marked, with a tooltip."""
    top = _nice_max(max([float(threshold), *(float(b["max_queue"]) for b in buckets)]))
    q0, q1 = QUEUE_PANEL

    def y(value: float) -> float:
        return q1 - (q1 - q0) * value / top

    lines: list[list[tuple[float, float]]] = []
    high = []
    previous: datetime | None = None
    for b in buckets:
        if previous is None or b["at"] - previous > bucket:
            lines.append([])
        previous = b["at"]
        point = (frame.x(b["at"] + bucket / 2), y(float(b["max_queue"])))
        lines[-1].append(point)
        if b["max_queue"] >= threshold:
            high.append({"x": point[0], "y": point[1], "queue": b["max_queue"],
                         "when": b["at"].astimezone(zone).strftime("%d/%m %H:%M")})
    ticks = [{"x": x, "label_x": min(max(x, LEFT), WIDTH - 16), "label": label} for x, label in _ticks(frame, zone)]
    return ENV.get_template("queue.svg").render(
        title=title, title_length=title_length(title), width=WIDTH, height=QUEUE_HEIGHT, left=LEFT, right=RIGHT,
        title_y=TITLE_Y,
        legend_y=LEGEND_Y, axis_y=QUEUE_AXIS_Y, top_y=q0, bottom_y=q1, top=top, threshold=threshold, threshold_y=y(threshold),
        ticks=ticks, lines=lines, high=high,
    )
