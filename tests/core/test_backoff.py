"""The one retry back-off: exponential, capped, jittered, and Retry-After wins."""

from datetime import timedelta

from app.backoff import backoff


def test_doubles_from_the_base_up_to_the_cap():
    assert [backoff(n, 30.0, 1800.0).total_seconds() for n in (0, 1, 2, 3, 7, 20)] == [
        30.0,
        30.0,
        60.0,
        120.0,
        1800.0,
        1800.0,
    ]
    assert backoff(12, 10.0) == timedelta(seconds=10 * 2**11)  # no cap given: none


def test_jitter_stays_between_half_and_all_of_the_pause():
    pauses = {backoff(3, 5.0, 3600.0, jitter=True).total_seconds() for _ in range(50)}
    assert all(10.0 <= p <= 20.0 for p in pauses) and len(pauses) > 1


def test_the_providers_retry_after_wins_when_longer():
    assert backoff(1, 60.0, retry_after=300) == timedelta(seconds=300)
    assert backoff(2, 60.0, retry_after=5) == timedelta(seconds=120)
    assert backoff(1, 60.0, retry_after=None) == timedelta(seconds=60)
