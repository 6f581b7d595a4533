"""Account facts kept by the control plane: whether an account has the audit log, and
which embedded partner manages it. Read by the viewer (who may read which log) and by the
sinks (partner destinations)."""
