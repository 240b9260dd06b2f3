"""The Redis broker's channel names, which keep deployments on one Redis apart."""

from dinegraph.events.brokers import redis_channel_prefix


def test_a_redis_database_number_names_the_channels() -> None:
    assert redis_channel_prefix("redis://127.0.0.1:6379/0") == "dinegraph."
    assert redis_channel_prefix("redis://127.0.0.1:6379") == "dinegraph."
    assert redis_channel_prefix("redis://127.0.0.1:6379/3") == "dinegraph.3."
    assert redis_channel_prefix("rediss://cache.internal/2") == "dinegraph.2."
