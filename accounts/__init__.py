"""Account facts kept by the control plane: whether an account has the audit log, and
which embedded partner manages it. Read by the viewer (who may read which log) and by the
sinks (partner destinations).

- ``model.py``: :class:`AccountFacts`, what readers use (``audit_log_enabled``).
- ``record.py``: :class:`AccountRecord`, the stored JSON value (facts, revision, who, when),
  and ``ACCOUNT_RECORDS``, how the topic's values read (:mod:`runtime.keyed_records`).
- ``store.py``: the accounts topic; :class:`AccountStore`, the command line's side.
- ``topic.py``: the accounts topic's spec (compacted), for ``auditlog topics ensure``.
- ``directory.py``: :class:`AccountDirectory`, the long-running side (followed on a thread).
- ``changes.py``: pure: the next record of a change and the audit events announcing it.
"""
