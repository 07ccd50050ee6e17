#!/usr/bin/env python3
"""Parses a Prometheus text exposition with the reference Python parser
(prometheus_client.parser, Debian's python3-prometheus-client) and prints the families as
JSON: {"families": {name: {"type", "help", "samples": [{"name", "labels", "value"}]}}}.

Exits 1 with the parser's message on malformed input, and also when the parser's leniency
would let a defect through: a sample whose family has no TYPE/HELP line, or a family
declared twice."""
import json
import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:  # exit 2: no parser, which is not a verdict on the input
    print(f"python3-prometheus-client missing ({e}): run tools/bootstrap", file=sys.stderr)
    sys.exit(2)


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    out = {}
    try:
        for fam in text_string_to_metric_families(text):
            if fam.name in out:
                raise ValueError(f"family {fam.name} appears twice")
            if fam.type == "unknown" or not fam.documentation:
                raise ValueError(f"family {fam.name} lacks a TYPE or HELP line")
            samples = []
            for s in fam.samples:
                v = s.value
                samples.append({"name": s.name, "labels": s.labels,
                                "value": v if math.isfinite(v) else str(v)})
            out[fam.name] = {"type": fam.type, "help": fam.documentation, "samples": samples}
    except Exception as e:  # the parser raises ValueError, and others on some inputs
        print(f"parse error: {e}", file=sys.stderr)
        return 1
    json.dump({"families": out}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
