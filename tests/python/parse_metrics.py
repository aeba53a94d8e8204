"""Parses an OpenMetrics exposition (stdin) with the Prometheus client library's own parser,
which refuses anything malformed, and prints its samples as JSON:
[{"name": ..., "labels": {...}, "value": ...}, ...]. Used by wasmrpc's metrics tests.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    samples = []
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.append({"name": s.name, "labels": dict(s.labels), "value": s.value, "type": family.type})
    print(json.dumps(samples))


if __name__ == "__main__":
    main()
