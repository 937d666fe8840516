"""Writes Delta tables the way the trading system's Python writers do.

  make_table.py TABLE tz|ntz AGE_S [COMMITS] [nostats]
                                               rows whose `synced_at` is AGE_S seconds
                                                old (tz-aware UTC or naive), appended in
                                                COMMITS commits (older ones first);
                                                nostats: a new table keeps statistics
                                                for its first column only
  make_table.py registry TABLE ACTIVE STOPPED  a strategy registry table
  make_table.py queue TABLE PENDING DONE AGE_S a position queue table
  make_table.py statuses TABLE [VERSION]       status counts (at a version) and the last operation
  make_table.py checkpoint TABLE               writes a checkpoint
  make_table.py optimize TABLE                 compacts the files (removes and re-adds)
  make_table.py bucket NAME                    creates an S3 bucket (DELTA_STORAGE_OPTIONS' endpoint)
  make_table.py count TABLE                    the number of rows
  make_table.py events TABLE                   an alerts table's rows: "alert_id state event_at_ms"

With DELTA_STORAGE_OPTIONS set (JSON), every table is read and written with those
storage options (s3:// tables on a local S3 server).
"""
import os
import sys
from datetime import datetime, timedelta, timezone

import pandas as pd
from deltalake import DeltaTable, write_deltalake

import functools
import json

_OPTIONS = json.loads(os.environ.get("DELTA_STORAGE_OPTIONS") or "null")
if _OPTIONS:
    write_deltalake = functools.partial(write_deltalake, storage_options=_OPTIONS)
    DeltaTable = functools.partial(DeltaTable, storage_options=_OPTIONS)


def finish():
    """Leaves without the interpreter's teardown: deltalake's background threads can
    abort it ("terminate called without an active exception") after the work is done."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

if sys.argv[1] == "bucket":
    import boto3
    boto3.client(
        "s3",
        endpoint_url=_OPTIONS["AWS_ENDPOINT_URL"],
        region_name=_OPTIONS["AWS_REGION"],
        aws_access_key_id=_OPTIONS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=_OPTIONS["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=sys.argv[2])
    finish()

if sys.argv[1] == "count":
    print(len(DeltaTable(sys.argv[2]).to_pandas()))
    finish()

if sys.argv[1] == "events":
    # events TABLE: one line per alerts-table row, "alert_id state event_at(ms)", sorted
    df = DeltaTable(sys.argv[2]).to_pandas()
    for r in sorted(f"{a} {s} {int(pd.Timestamp(t).timestamp() * 1000)}" for a, s, t in zip(df.alert_id, df.state, df.event_at)):
        print(r)
    finish()

if sys.argv[1] == "registry":
    # registry TABLE ACTIVE STOPPED: a strategy registry with ACTIVE and STOPPED rows,
    # in two commits.
    table, active, stopped = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [(i, "ACTIVE") for i in range(active)] + [(active + i, "STOPPED") for i in range(stopped)]
    half = len(rows) // 2
    for part in (rows[:half], rows[half:]):
        df = pd.DataFrame({
            "conid": [100000 + i for i, _ in part],
            "symbol": [["SPY", "QQQ", "IWM", "AAPL"][i % 4] for i, _ in part],
            "strategy_id": [f"strat-{i}" for i, _ in part],
            "since": [now - timedelta(minutes=i) for i, _ in part],
            "status": [s for _, s in part],
        })
        write_deltalake(table, df, mode="append")
    finish()
if sys.argv[1] == "queue":
    # queue TABLE PENDING DONE OLDEST_AGE_S: a position queue; the oldest pending row
    # is OLDEST_AGE_S seconds old.
    table, pending, done, oldest = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    df = pd.DataFrame({
        "conid": list(range(pending + done)),
        "status": ["PENDING"] * pending + ["DONE"] * done,
        "created_at": [now - timedelta(seconds=oldest * (pending - i) / pending) for i in range(pending)]
        + [now - timedelta(hours=1)] * done,
    })
    write_deltalake(table, df, mode="append")
    finish()
if sys.argv[1] == "statuses":
    # statuses TABLE [VERSION]: JSON {status: count} at a version, and the latest operation.
    import json
    table = sys.argv[2]
    dt = DeltaTable(table, version=int(sys.argv[3])) if len(sys.argv) > 3 else DeltaTable(table)
    counts = dt.to_pandas()["status"].value_counts().to_dict()
    print(json.dumps({"counts": counts, "operation": DeltaTable(table).history(1)[0]["operation"]}))
    finish()
if sys.argv[1] == "checkpoint":
    DeltaTable(sys.argv[2]).create_checkpoint()
    finish()
if sys.argv[1] == "optimize":
    DeltaTable(sys.argv[2]).optimize.compact()
    finish()

table, kind, age = sys.argv[1], sys.argv[2], float(sys.argv[3])
commits = int(sys.argv[4]) if len(sys.argv) > 4 else 1
config = {"delta.dataSkippingNumIndexedCols": "1"} if "nostats" in sys.argv[5:] else None
now = datetime.now(timezone.utc)
for i in range(commits):
    # The last commit holds the newest row.
    t = now - timedelta(seconds=age + (commits - 1 - i) * 60)
    if kind == "ntz":
        t = t.replace(tzinfo=None)
    df = pd.DataFrame({
        "conid": [1000 + i, 2000 + i],
        "symbol": ["SPY", "QQQ"],
        "synced_at": [t - timedelta(seconds=30), t],
    })
    write_deltalake(table, df, mode="append", configuration=config)
finish()
