"""Python side of the alerts-table tests, with the `deltalake` package the trading
system uses.

  alerts_table.py read TABLE          -> JSON: {"dtypes": {...}, "rows": [...], "version": N}
  alerts_table.py count TABLE         -> JSON: {"rows": N, "seconds": time to read it into pandas}
  alerts_table.py append TABLE N      -> appends N rows, one commit each, as another writer would
                                         (with the `date` partition when the table has it)
  alerts_table.py bulk TABLE N DAYS   -> writes N rows over the last DAYS days in one commit,
                                         as a table from before the `date` partition
"""
import json
import os
import sys
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake


def finish():
    """Leaves without the interpreter's teardown: deltalake's background threads can
    abort it ("terminate called without an active exception") after the work is done."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

command, table = sys.argv[1], sys.argv[2]

if command == "read":
    dt = DeltaTable(table)
    df = dt.to_pandas()
    rows = json.loads(df.to_json(orient="records", date_format="iso", date_unit="us"))
    print(json.dumps({
        "dtypes": {c: str(t) for c, t in df.dtypes.items()},
        "rows": rows,
        "version": dt.version(),
    }))
elif command == "count":
    import time
    started = time.perf_counter()
    df = DeltaTable(table).to_pandas()
    elapsed = time.perf_counter() - started
    print(json.dumps({"rows": len(df), "seconds": elapsed}))
elif command in ("append", "bulk"):
    n = int(sys.argv[3])
    ts = pa.timestamp("us", tz="UTC")
    fields = [
        pa.field("alert_id", pa.string(), nullable=False),
        pa.field("rule", pa.string(), nullable=False),
        pa.field("check_id", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("state", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=True),
        pa.field("started_at", ts, nullable=False),
        pa.field("event_at", ts, nullable=False),
        pa.field("host", pa.string(), nullable=False),
    ]
    if command == "bulk":
        from datetime import timedelta
        days = float(sys.argv[4])
        now = datetime.now(timezone.utc)
        at = [now - timedelta(seconds=days * 86400 * i / n) for i in range(n)]
        batch = pa.table({
            "alert_id": [f"old.c{i % 50}.{i // 2}" for i in range(n)],
            "rule": ["old"] * n,
            "check_id": [f"c{i % 50}" for i in range(n)],
            "severity": ["CRITICAL" if i % 7 == 0 else "WARNING" for i in range(n)],
            "state": ["firing" if i % 2 == 0 else "resolved" for i in range(n)],
            "message": [f"check c{i % 50} event {i} with some words to make the row realistic" for i in range(n)],
            "value": [float(i) for i in range(n)],
            "started_at": at,
            "event_at": at,
            "host": ["old-host"] * n,
        }, schema=pa.schema(fields))
        write_deltalake(table, batch, mode="append")
        print("wrote", n)
        finish()
    partitioned = False
    try:
        partitioned = "date" in DeltaTable(table).metadata().partition_columns
    except Exception:
        pass
    if partitioned:
        fields.append(pa.field("date", pa.string(), nullable=False))
    schema = pa.schema(fields)
    for i in range(n):
        now = datetime.now(timezone.utc)
        row = {
            "alert_id": [f"dashboard.ack.{i}"],
            "rule": ["dashboard"],
            "check_id": ["positions"],
            "severity": ["WARNING"],
            "state": ["acknowledged"],
            "message": [f"acknowledged from the dashboard {i}"],
            "value": [None],
            "started_at": [now],
            "event_at": [now],
            "host": ["dashboard"],
        }
        if partitioned:
            row["date"] = [now.strftime("%Y-%m-%d")]
        write_deltalake(table, pa.table(row, schema=schema), mode="append", partition_by=["date"] if partitioned else None)
    print("appended", n)
finish()
