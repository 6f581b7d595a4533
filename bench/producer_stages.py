"""Benchmark: the producer SDK's own CPU per event, stage by stage, with no broker.

CPU time of this process (``time.process_time``, best of ``--repeat`` passes over the same
generated events), so other processes on the machine change it little:

- ``model_validate_us``: ``EventValidator.validate`` (the pydantic model, the contract);
- ``model_datum_us``: ``AuditEvent.to_avro`` on the validated models;
- ``validate_datum_us``: ``EventValidator.validate_datum``, the fast path (plain dict to
  datum, no model instances) that ``publish`` uses;
- ``encode_us``: the single-object encoder on those datums.

``--stage NAME --events N`` runs one stage once and prints nothing else, for
``valgrind --tool=callgrind`` (instruction counts: run N and 2N, subtract, divide by N).

    python -m bench.producer_stages [--events 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import machine
from producers.generator import GeneratorConfig, generate
from schemas.validation import EventValidator
from schemas.wire import SingleObjectEncoder


def _cpu_us(action: Callable[[Any], object], items: Sequence[Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        for item in items:
            action(item)
        best = min(best, time.process_time() - began)
    return round(best / len(items) * 1e6, 2)


def events(count: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(hours=2)
    config = GeneratorConfig(
        events=count, tenants=200, seed=1, start=start, mean_gap_ms=5.0, diurnal=False
    )
    return list(generate(config))


def stages(count: int) -> dict[str, tuple[Callable[[Any], object], list[Any]]]:
    generated = events(count)
    validator = EventValidator()
    encoder = SingleObjectEncoder()
    models = [validator.validate(e) for e in generated]
    datums = [validator.validate_datum(e) for e in generated]
    return {
        "model_validate": (validator.validate, generated),
        "model_datum": (lambda e: e.to_avro(), models),
        "validate_datum": (validator.validate_datum, generated),
        "encode": (encoder.encode, datums),
        "validate_datum_encode": (lambda e: encoder.encode(validator.validate_datum(e)), generated),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stage", help="run this stage once, print nothing (for callgrind)")
    args = parser.parse_args(argv)
    table = stages(args.events)
    if args.stage:
        action, items = table[args.stage]
        for item in items:
            action(item)
        return 0
    result: dict[str, Any] = {"events": args.events, "repeat": args.repeat}
    for name, (action, items) in table.items():
        result[f"{name}_us"] = _cpu_us(action, items, args.repeat)
    result["model_path_us"] = round(
        result["model_validate_us"] + result["model_datum_us"] + result["encode_us"], 2
    )
    result["speedup_validation_and_datum"] = round(
        (result["model_validate_us"] + result["model_datum_us"]) / result["validate_datum_us"], 2
    )
    result["machine"] = machine()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
