"""Parses Prometheus text from stdin with the official client's parser (it raises on text a
Prometheus server would refuse) and prints every sample as one JSON object:
{"name{label=value,...}": value}."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
        samples[f"{sample.name}{{{labels}}}"] = sample.value
print(json.dumps(samples))
