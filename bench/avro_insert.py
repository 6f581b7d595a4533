"""Benchmark: raw Avro datums framed into object-container blocks and inserted ``FORMAT
Avro``, beside the usual way (decode each record in Python, insert columns Native).

Generates ``--events`` events, encodes them (single-object encoding, the current schema)
before any clock starts, then in the same run and into identical tables:

- ``avro_block``: per batch of ``--batch-rows`` values, :func:`split_by_schema` +
  :func:`frame_block` + ``client.raw_insert(..., fmt="Avro")`` (timed: framing + insert);
- ``decode_native``: per batch, ``schemas.wire.Decoder.decode`` for every value, rows to
  columns, ``client.insert`` (timed: decoding + columns + insert);
- ``avro_block_parse_only``: the Avro blocks again, into a ``Null``-engine copy of the
  table (the engine parses the blocks and computes the DEFAULT columns, then drops the
  rows): the engine's ceiling before anything is sorted, compressed or written.

Prints one JSON object: rows/s of each path (and the framing and decoding share of their
time), the ratio, the share of the Avro insert's time that storing takes
(``storing_share`` = 1 - stored rows/s / parse-only rows/s), the gateway start time and
the machine.

    python -m bench.avro_insert                      # a gateway of its own in a temp dir
    python -m bench.avro_insert --url http://127.0.0.1:18123   # an existing one
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from bench.common import FIELDS, decoded_columns, machine, private_clickhouse
from consumers.avro_block import bundled_schema_json, frame_block, split_by_schema, top_level_fields
from consumers.migrations import apply_pending
from producers.generator import GeneratorConfig, generate
from schemas.validation import EventValidator
from schemas.wire import Decoder, SingleObjectEncoder

# The Avro schema's top-level fields: the table's columns of the same names.


def _values(events: int) -> list[bytes]:
    config = GeneratorConfig(
        events=events,
        tenants=50,
        seed=3,
        start=datetime.now(UTC) - timedelta(days=3),
        diurnal=False,
    )
    validator, encoder = EventValidator(), SingleObjectEncoder()
    return [encoder.encode(validator.validate(event).to_avro()) for event in generate(config)]


def _avro_block(client: Client, table: str, batch: list[bytes]) -> float:
    """Frame and insert one batch; the seconds spent framing."""
    began = time.perf_counter()
    split = split_by_schema(batch)
    blocks = []
    for group in split.groups:
        schema = bundled_schema_json(group.frame)
        blocks.append((top_level_fields(schema), frame_block(schema, group.datums)))
    framing_s = time.perf_counter() - began
    for columns, block in blocks:
        client.raw_insert(table, columns, insert_block=block, fmt="Avro")
    return framing_s


def _decode_native(client: Client, table: str, batch: list[bytes], decoder: Decoder) -> float:
    """Decode, build columns and insert one batch; the seconds spent decoding + columns."""
    began = time.perf_counter()
    records = [decoder.decode(value) for value in batch]
    columns = decoded_columns(records)
    decoding_s = time.perf_counter() - began
    client.insert(table, columns, column_names=FIELDS, column_oriented=True)
    return decoding_s


def run(url: str, *, events: int, batch_rows: int) -> dict[str, Any]:
    """Both paths over the same values at ``url``; the measurement as a dict."""
    began = time.perf_counter()
    values = _values(events)
    prepare_s = time.perf_counter() - began
    batches = [values[start : start + batch_rows] for start in range(0, events, batch_rows)]
    parts = urllib.parse.urlsplit(url)
    client = clickhouse_connect.get_client(host=parts.hostname, port=parts.port)
    database = f"bench_{uuid.uuid4().hex[:8]}"
    apply_pending(client, database=database)  # the real table, as `auditlog migrate` makes it
    results: dict[str, Any] = {}
    try:
        decoder = Decoder()
        for name in ("avro_block", "decode_native", "avro_block_parse_only"):
            table = f"{database}.{name}"
            engine = " ENGINE = Null" if name.endswith("parse_only") else ""
            client.command(f"CREATE TABLE {table} AS {database}.events{engine}")
            elapsed_s = inner_s = 0.0
            for batch in batches:
                began = time.perf_counter()
                if name.startswith("avro_block"):
                    inner_s += _avro_block(client, table, batch)
                else:
                    inner_s += _decode_native(client, table, batch, decoder)
                elapsed_s += time.perf_counter() - began
            stored = client.command(f"SELECT count() FROM {table}")
            results[name] = {
                "seconds": round(elapsed_s, 3),
                "rows_per_s": round(events / elapsed_s),
                ("framing_s" if name.startswith("avro_block") else "decode_and_columns_s"): round(
                    inner_s, 3
                ),
                "stored_rows": stored,
            }
    finally:
        client.command(f"DROP DATABASE {database}")
    return {
        "events": events,
        "batch_rows": batch_rows,
        "mean_value_bytes": round(sum(map(len, values)) / len(values), 1),
        "prepare_s": round(prepare_s, 1),
        **results,
        "speedup": round(
            results["avro_block"]["rows_per_s"] / results["decode_native"]["rows_per_s"], 2
        ),
        "storing_share": round(
            1
            - results["avro_block"]["rows_per_s"] / results["avro_block_parse_only"]["rows_per_s"],
            2,
        ),
        "engine_version": client.server_version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="an existing gateway or ClickHouse server")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch-rows", type=int, default=50_000)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    began = time.perf_counter()
    with private_clickhouse(args.url) as url:
        if args.url is None:
            result["gateway_start_s"] = round(time.perf_counter() - began, 3)
        result |= run(url, events=args.events, batch_rows=args.batch_rows)
    result["machine"] = machine() | {"clickhouse_connect": clickhouse_connect.__version__}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
