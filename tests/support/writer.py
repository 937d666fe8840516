"""A trading-system writer (the columns of make_table.py): appends one row (`synced_at` = now, UTC) to a Delta table
every second, the way the positions sync does, until killed.

Usage: writer.py TABLE [PERIOD_S]
Prints "ready" after its first commit. deltalake writes a checkpoint every 100
commits (the table's default), as the real writers do.
"""
import os
import sys
import time
from datetime import datetime, timezone

import pandas as pd
from deltalake import write_deltalake

table = sys.argv[1]
period = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
n = 0
while True:
    started = time.monotonic()
    df = pd.DataFrame({
        "conid": [100000 + n % 500],
        "symbol": [["SPY", "QQQ", "IWM", "AAPL"][n % 4]],
        "synced_at": [datetime.now(timezone.utc)],
    })
    write_deltalake(table, df, mode="append")
    if n == 0:
        print("ready", flush=True)
    n += 1
    time.sleep(max(0.0, period - (time.monotonic() - started)))
