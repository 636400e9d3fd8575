"""Whatever the attempts, a chart stays inside its axes, its top tick is at least the
highest value, and its ticks are round numbers that climb."""

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from hookpost.ops.stats import Slot
from hookpost.sites import charts

START = datetime(2026, 12, 7, tzinfo=UTC)
counts = st.integers(min_value=0, max_value=10**7)
durations = st.none() | st.floats(min_value=0, max_value=10**8)


@st.composite
def series(draw: st.DrawFn) -> list[Slot]:
    size = draw(st.integers(min_value=1, max_value=96))
    return [
        Slot(
            at=START + timedelta(minutes=n),
            succeeded=draw(counts),
            refused=draw(counts),
            unanswered=draw(counts),
            p50_ms=draw(durations),
            p95_ms=draw(durations),
        )
        for n in range(size)
    ]


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M")


def _inside(chart: charts.Chart, x: float, y: float) -> bool:
    slack = 0.2  # the rounding to a tenth
    return (
        chart.left - slack <= x <= chart.right + slack
        and chart.top - slack <= y <= chart.bottom + slack
    )


def _ticks_climb(chart: charts.Chart) -> None:
    ys = [y for y, _ in chart.y_ticks]
    assert ys == sorted(ys, reverse=True)  # higher values, higher on the page
    assert ys[0] == chart.bottom
    assert len(chart.y_ticks) >= 2


@given(series())
def test_bars_stack_inside_the_axes(slots: list[Slot]) -> None:
    chart = charts.outcomes(slots, per="per minute", every=10, label=_clock)
    _ticks_climb(chart)
    top = float(chart.y_ticks[-1][1].replace(",", ""))
    assert top >= max(slot.succeeded + slot.failed for slot in slots)
    assert len(chart.bars) == len(slots)
    for bar, slot in zip(chart.bars, slots, strict=True):
        assert f"{slot.succeeded} succeeded" in bar.title
        assert [s.kind for s in bar.segments] == [
            kind
            for kind, value in (
                ("succeeded", slot.succeeded),
                ("refused", slot.refused),
                ("unanswered", slot.unanswered),
            )
            if value and chart.bottom - chart.top > 0
        ][: len(bar.segments)]
        for segment in bar.segments:
            assert _inside(chart, bar.x, segment.y)
            assert _inside(chart, bar.x + bar.width, segment.y + segment.height)


@given(series())
def test_latency_lines_stay_inside_the_axes(slots: list[Slot]) -> None:
    chart = charts.latency(slots, every=16, label=_clock)
    _ticks_climb(chart)
    top = float(chart.y_ticks[-1][1].replace(",", ""))
    assert top >= max(max(slot.p50_ms or 0, slot.p95_ms or 0) for slot in slots)
    for line in chart.lines:
        drawn = [point for run in line.runs for point in run]
        values = [slot.p50_ms if line.kind == "p50" else slot.p95_ms for slot in slots]
        assert len(drawn) == sum(value is not None for value in values)
        for x, y, _ in drawn:
            assert _inside(chart, x, y)
