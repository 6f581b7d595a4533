"""The viewer's query layer: what reads the audit events of one account from ClickHouse.

- :mod:`viewer.query.params`: the request's query string -> :class:`ListQuery` /
  :class:`ExportQuery`, every parameter validated (:class:`BadParameter` names it).
- :mod:`viewer.query.cursor`: opaque, HMAC-signed page cursors bound to one query.
- :mod:`viewer.query.sql`: the parameterised SQL (tenant, retention floor, filters, order).
- :mod:`viewer.query.records`: one stored row -> the JSON record (page, event, NDJSON).
- :mod:`viewer.query.export`: streamed NDJSON / CSV encoders.
- :mod:`viewer.query.reader`: :class:`EventReader`, the API the HTTP app calls.
"""
