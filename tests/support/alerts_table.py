"""Python side of the alerts-table tests, with the `deltalake` package the trading
system uses.

  alerts_table.py read TABLE          -> JSON: {"dtypes": {...}, "rows": [...], "version": N}
  alerts_table.py count TABLE         -> JSON: {"rows": N, "seconds": time to read it into pandas}
  alerts_table.py append TABLE N      -> appends N rows, one commit each, as another writer would
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
elif command == "append":
    n = int(sys.argv[3])
    ts = pa.timestamp("us", tz="UTC")
    schema = pa.schema([
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
    ])
    for i in range(n):
        now = datetime.now(timezone.utc)
        batch = pa.table({
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
        }, schema=schema)
        write_deltalake(table, batch, mode="append")
    print("appended", n)
finish()
