#!/usr/bin/python3
"""Scrapes a ftd /metrics endpoint and parses it with prometheus_client's own
text parser (Debian python3-prometheus-client): a real Prometheus-format
reader, not ours. Prints the families as JSON for the C++ test to check.

usage: scrape_metrics.py URL [TOKEN_FILE]
Exit 0 with JSON on stdout; 1 with the reason on stderr (HTTP error, parse error).
"""
import json
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    url = sys.argv[1]
    request = urllib.request.Request(url)
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            request.add_header("Authorization", "Bearer " + f.read().strip())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            content_type = response.headers.get("Content-Type", "")
            text = response.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        print(f"HTTP {e.code}", file=sys.stderr)
        return 1
    families = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = {
            "type": family.type,
            "help": family.documentation,
            "samples": [{"name": s.name, "labels": s.labels, "value": s.value}
                        for s in family.samples],
        }
    json.dump({"content_type": content_type, "families": families}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
