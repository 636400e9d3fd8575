"""Hypothesis settings for the generated tests that run against the real services."""

from hypothesis import HealthCheck, settings


def generated(max_examples: int) -> settings:
    """The same examples every run (CI and a laptop find the same thing, nothing is kept
    between runs), no deadline (a database round trip varies on a shared machine), and the
    examples of one test may share its function-scoped fixtures (the app, the database)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
