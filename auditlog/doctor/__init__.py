"""``auditlog doctor``: every check an operator runs by hand before trusting a deployment.

Each check is a pure judge of facts (:mod:`.checks_settings`, :mod:`.checks_kafka`,
:mod:`.checks_clickhouse`, :mod:`.checks_lag`, :mod:`.checks_destinations`,
:mod:`.checks_keys`) returning a :class:`~.model.CheckResult`; the facts are read at the
edge (:mod:`.probes_kafka`, :mod:`.probes_clickhouse`), each read bounded by a timeout, and
:mod:`.runner` runs the checks in order, skipping those whose service did not answer.
"""
