"""Charts as the pages draw them: a series of time slots turned into the geometry of an SVG
(bars stacked by outcome, latency lines, axes with round ticks and their units), so that the
template only places what this module measured and a page needs no script to show it."""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from hookpost.ops.stats import Slot

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 10, 26
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
Y_TICKS = 4


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    kind: str  # the CSS class: succeeded, refused, unanswered


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    title: str  # what a pointer over it reads
    segments: list[Segment]


@dataclass(frozen=True)
class Line:
    kind: str  # the CSS class: p50, p95
    runs: list[list[tuple[float, float, str]]]  # x, y, what a pointer reads; broken where
    # a slot has no attempt

    def polylines(self) -> list[str]:
        return [" ".join(f"{x},{y}" for x, y, _ in run) for run in self.runs]


@dataclass(frozen=True)
class Chart:
    label: str  # for a screen reader: what it shows
    unit: str  # the y axis's unit, written beside it
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    bottom: float = TOP + PLOT_H
    right: float = LEFT + PLOT_W


def round_step(most: float) -> float:
    """A step of 1, 2 or 5 times a power of ten (1 at the least: attempts are counted whole)
    that spans ``most`` in ``Y_TICKS`` steps or fewer."""
    rough = max(most, Y_TICKS) / Y_TICKS
    power = 10 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough)


def _y_axis(
    most: float, unit_format: Callable[[float], str]
) -> tuple[float, list[tuple[float, str]]]:
    step = round_step(most)
    top = step * max(1, math.ceil(most / step))
    ticks = [
        (TOP + PLOT_H - PLOT_H * value / top, unit_format(value))
        for value in (step * n for n in range(round(top / step) + 1))
    ]
    return top, ticks


def _x_ticks(
    times: Sequence[datetime], every: int, label: Callable[[datetime], str]
) -> list[tuple[float, str]]:
    slot_w = PLOT_W / len(times)
    return [(LEFT + slot_w * n, label(at)) for n, at in enumerate(times) if n % every == 0]


def _count(value: float) -> str:
    return f"{value:g}"


def _ms(value: float) -> str:
    return f"{value:,g}"


# One piece of a stacked bar: its CSS class, its count, and how its count reads ("failed").
Piece = tuple[str, int, str]


def stacked(
    times: Sequence[datetime],
    stacks: Sequence[Sequence[Piece]],
    *,
    what: str,
    per: str,
    every: int,
    label: Callable[[datetime], str],
) -> Chart:
    """A bar per slot starting at ``times``, its pieces stacked from the axis up."""
    most = max((sum(value for _, value, _ in stack) for stack in stacks), default=0)
    top, y_ticks = _y_axis(most, _count)
    slot_w = PLOT_W / len(times)
    bars = []
    for n, (at, stack) in enumerate(zip(times, stacks, strict=True)):
        base: float = TOP + PLOT_H
        segments = []
        for kind, value, _ in stack:
            height = PLOT_H * value / top
            if height:
                base -= height
                segments.append(Segment(round(base, 1), round(height, 1), kind))
        title = f"{label(at)} UTC: " + ", ".join(f"{value} {words}" for _, value, words in stack)
        x, width = round(LEFT + slot_w * n + 0.5, 1), round(max(slot_w - 1, 1), 1)
        bars.append(Bar(x, width, title, segments))
    return Chart(
        label=f"{what} {per}",
        unit=f"attempts {per}",
        y_ticks=y_ticks,
        x_ticks=_x_ticks(times, every, label),
        bars=bars,
    )


def outcomes(
    slots: Sequence[Slot], *, per: str, every: int, label: Callable[[datetime], str]
) -> Chart:
    """Attempts per slot, stacked: succeeded, answered but not 2xx, not answered."""
    return stacked(
        [slot.at for slot in slots],
        [
            [
                ("succeeded", slot.succeeded, "succeeded"),
                ("refused", slot.refused, "answered not 2xx"),
                ("unanswered", slot.unanswered, "not answered"),
            ]
            for slot in slots
        ],
        what="Attempts by outcome,",
        per=per,
        every=every,
        label=label,
    )


def latency(slots: Sequence[Slot], *, every: int, label: Callable[[datetime], str]) -> Chart:
    """The median and the 95th percentile of the attempts' durations, slot by slot."""
    most = max((max(slot.p50_ms or 0, slot.p95_ms or 0) for slot in slots), default=0)
    top, y_ticks = _y_axis(most, _ms)
    slot_w = PLOT_W / len(slots)
    lines = []
    for kind in ("p50", "p95"):
        runs: list[list[tuple[float, float, str]]] = [[]]
        for n, slot in enumerate(slots):
            value = slot.p50_ms if kind == "p50" else slot.p95_ms
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            x = LEFT + slot_w * (n + 0.5)
            y = TOP + PLOT_H - PLOT_H * value / top
            title = f"{label(slot.at)} UTC: {kind} {value:.0f} ms"
            runs[-1].append((round(x, 1), round(y, 1), title))
        lines.append(Line(kind, [run for run in runs if run]))
    return Chart(
        label="Latency of the attempts, median and 95th percentile, in milliseconds",
        unit="ms",
        y_ticks=y_ticks,
        x_ticks=_x_ticks([slot.at for slot in slots], every, label),
        lines=lines,
    )
