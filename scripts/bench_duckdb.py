"""The DuckDB baseline of siyu's segment-count benchmark.

Loads the CSV files `siyu bench` exported (customers.csv, tags.csv) into an in-memory DuckDB
database and times the same five-predicate count the bitmap index answers. Prints one JSON
object: the count, the median and p95 query times in ms, the load time and resident memory.
Usage: bench_duckdb.py DIR TAG_A TAG_B SPEND_MIN RUNS
"""

import json
import statistics
import sys
import time

import duckdb


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    d, tag_a, tag_b, spend_min, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(f"CREATE TABLE customers AS SELECT * FROM read_csv('{d}/customers.csv', header = true)")
    con.execute(f"CREATE TABLE tags AS SELECT * FROM read_csv('{d}/tags.csv', header = true)")
    load_s = time.perf_counter() - started
    q = """
        SELECT count(*) FROM customers c
        WHERE c.lifecycle = 'deal' AND c.rfm_segment = 'important_value' AND c.spend_fen >= ?
          AND EXISTS (SELECT 1 FROM tags t WHERE t.num = c.num AND t.tag = ?)
          AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.num = c.num AND t.tag = ?)
    """
    con.execute(q, [spend_min, tag_a, tag_b]).fetchone()  # warm-up
    times, n = [], None
    for _ in range(runs):
        t = time.perf_counter()
        n = con.execute(q, [spend_min, tag_a, tag_b]).fetchone()[0]
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({
        "count": n,
        "median_ms": statistics.median(times),
        "p95_ms": times[min(len(times) - 1, int(len(times) * 0.95))],
        "load_s": load_s,
        "rss_mib": rss_mib(),
        "duckdb": duckdb.__version__,
    }))


if __name__ == "__main__":
    main()
