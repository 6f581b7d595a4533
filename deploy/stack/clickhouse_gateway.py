"""A development gateway that serves the embedded ClickHouse engine (chdb) over the
ClickHouse HTTP protocol. Development tooling, not a ClickHouse server.

Run it as ``python -m deploy.stack.clickhouse_gateway --data-dir DIR --host 127.0.0.1
--port PORT``. It serves the part of the ClickHouse HTTP interface that clickhouse-connect
and curl use: ``/ping``; queries from the ``query`` URL parameter and/or the POST body;
``INSERT ... FORMAT X`` data streamed from the body (any input format the engine reads:
Native, RowBinary, Avro, TSV, ...); URL settings, ``database``, ``default_format``,
``query_id``, ``param_*`` query parameters and ``session_id`` sessions, per request;
gzip/deflate/zstd/lz4 request bodies; ClickHouse's response headers and error codes.

Not served: authentication (user/password are ignored), TLS, ClickHouse's native block
compression (``compress``/``decompress``), compressed responses, progress headers,
external data, temporary tables across requests. The implementation lives in
:mod:`deploy.stack.chgateway`; :func:`deploy.stack.clickhouse.start_clickhouse` runs it in
the background.
"""

from deploy.stack.chgateway.server import main

if __name__ == "__main__":
    raise SystemExit(main())
