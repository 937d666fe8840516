"""Python baselines for the delta_freshness benchmark, timed in-process.

  freshness_baseline.py TABLE RUNS [COLUMN]
prints JSON: median ms of (a) DeltaTable(path) + history(1) — what an operator's
freshness script does on each refresh, (b) a kept-open table: update_incremental() +
history(1), (c) with COLUMN: to_pyarrow_table(columns=[COLUMN]) max.
"""
import json
import os
import statistics
import sys
import time

import pyarrow.compute as pc
from deltalake import DeltaTable


def finish():
    """Leaves without the interpreter's teardown: deltalake's background threads can
    abort it ("terminate called without an active exception") after the work is done."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

table, runs = sys.argv[1], int(sys.argv[2])
column = sys.argv[3] if len(sys.argv) > 3 else None


def timed(f):
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


result = {"open_history_ms": timed(lambda: DeltaTable(table).history(1))}
kept = DeltaTable(table)
result["kept_open_ms"] = timed(lambda: (kept.update_incremental(), kept.history(1)))
if column:
    result["column_max_ms"] = timed(lambda: pc.max(DeltaTable(table).to_pyarrow_table(columns=[column])[column]))
print(json.dumps(result))
finish()
