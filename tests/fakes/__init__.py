"""In-memory fakes of the services the deterministic tests replace at a seam.

:mod:`tests.fakes.kafka_broker` is a Kafka broker whose consumers and producers are
``confluent_kafka.Consumer`` / ``Producer`` subclasses (the code under test runs unchanged);
:mod:`tests.fakes.crash` the crash a test injects. ``tests/stack/test_fake_broker_contract.py``
runs the same scenarios against the real broker and this fake: what it checks is what the fake
promises.
"""
