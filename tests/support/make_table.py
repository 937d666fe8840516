"""Writes Delta tables the way the trading system's Python writers do.

  make_table.py TABLE tz|ntz AGE_S [COMMITS]   rows whose `synced_at` is AGE_S seconds
                                                old (tz-aware UTC or naive), appended in
                                                COMMITS commits (older ones first)
  make_table.py checkpoint TABLE               writes a checkpoint
  make_table.py optimize TABLE                 compacts the files (removes and re-adds)
"""
import sys
from datetime import datetime, timedelta, timezone

import pandas as pd
from deltalake import DeltaTable, write_deltalake

if sys.argv[1] == "checkpoint":
    DeltaTable(sys.argv[2]).create_checkpoint()
    sys.exit(0)
if sys.argv[1] == "optimize":
    DeltaTable(sys.argv[2]).optimize.compact()
    sys.exit(0)

table, kind, age = sys.argv[1], sys.argv[2], float(sys.argv[3])
commits = int(sys.argv[4]) if len(sys.argv) > 4 else 1
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
    write_deltalake(table, df, mode="append")
