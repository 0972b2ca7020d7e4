#!/usr/bin/env python3
"""Reads Freshet's Feast rows back through an unmodified Feast client.

Copies the shipped feature repository to a scratch directory, points its
online store at the given Redis, runs `feast apply` there, then calls
`FeatureStore.get_online_features` for the requested entities and prints
JSON on stdout:

  {"users": {id: {feature: value, ..., "_ts_ms": ms | null}}, "items": {...}}

Values are what Feast returns (null for a missing field); `_ts_ms` is the
row's event timestamp as Feast reports it (null when Feast reports none).

Usage: feast_online_read.py --repo feast_repo --redis host:port \
           [--cluster] --requests requests.json    ({"users": [...], "items": [...]})
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

USER_FEATURES = ["recent_items_50", "interaction_count", "embedding"]
ITEM_FEATURES = ["popularity_7d", "impressions_7d", "embedding"]


def prepare_repo(repo: str, redis: str, cluster: bool, scratch: str) -> str:
    target = os.path.join(scratch, "repo")
    shutil.copytree(repo, target, ignore=shutil.ignore_patterns("data", "__pycache__"))
    path = os.path.join(target, "feature_store.yaml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text, count = re.subn(r'connection_string: "[^"]*"', f'connection_string: "{redis}"', text)
    if count != 1:
        raise SystemExit(f"{path}: expected one connection_string line")
    if cluster:
        text = text.replace("type: redis\n", "type: redis\n  redis_type: redis_cluster\n", 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    feast_cli = os.path.join(os.path.dirname(sys.executable), "feast")
    # Run the console script through this interpreter: its shebang names the
    # path the venv was created at, which breaks if the checkout was moved.
    subprocess.run([sys.executable, feast_cli, "apply"], cwd=target, check=True, stdout=sys.stderr, stderr=sys.stderr)
    return target


def read(store, view: str, join_key: str, features, ids):
    if not ids:
        return {}
    refs = [f"{view}:{name}" for name in features]
    response = store.get_online_features(features=refs, entity_rows=[{join_key: i} for i in ids])
    values = response.to_dict()
    proto = response.proto
    names = list(proto.metadata.feature_names.val)
    result = {}
    for row, entity in enumerate(ids):
        entry = {}
        for name in features:
            entry[name] = values[name][row]
        stamps = proto.results[names.index(features[0])].event_timestamps
        ts = stamps[row] if row < len(stamps) else None
        entry["_ts_ms"] = None if ts is None or (ts.seconds == 0 and ts.nanos == 0) else ts.seconds * 1000 + ts.nanos // 1_000_000
        result[entity] = entry
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", required=True)
    parser.add_argument("--redis", required=True, help="host:port (cluster: host:port,host:port,...)")
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--requests", required=True)
    args = parser.parse_args()
    with open(args.requests, encoding="utf-8") as f:
        requests = json.load(f)
    from feast import FeatureStore  # after argument checks: the import takes seconds

    with tempfile.TemporaryDirectory() as scratch:
        store = FeatureStore(repo_path=prepare_repo(args.repo, args.redis, args.cluster, scratch))
        out = {
            "users": read(store, "user_features", "user_id", USER_FEATURES, requests.get("users", [])),
            "items": read(store, "item_features", "item_id", ITEM_FEATURES, requests.get("items", [])),
        }
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
