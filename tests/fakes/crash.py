"""The crash a deterministic test injects at a seam.

:class:`SimulatedCrash` is a :class:`BaseException`, so the ``except Exception`` of the code
under test (its retry loops, its error logging) does not catch it: it unwinds the component
the way SIGKILL stops a process, and nothing after the crash point runs. Raise it only after
marking the client dead in the fake broker (:meth:`tests.fakes.kafka_broker.FakeBroker.kill`),
so that the component's ``finally`` blocks cannot commit, close or leave the group either:
every later call on a dead client raises it again.
"""

from __future__ import annotations


class SimulatedCrash(BaseException):
    """The process stopped here (as if killed); nothing after this point ran."""
