"""Committed inserts into an SQLite database in the working directory (run as a child process).

usage: python sqlite_inserts.py COMMITS ROWS_PER_COMMIT ROW_BYTES
Each commit is one transaction (rollback journal, synchronous=FULL: SQLite's defaults), so each
writes and fsyncs the journal and the database, and deletes the journal.
"""
import sqlite3
import sys


def main(commits: int, rows: int, row_bytes: int) -> None:
    db = sqlite3.connect("bench.sqlite", isolation_level=None)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB)")
    k = 0
    for _ in range(commits):
        db.execute("BEGIN")
        for _ in range(rows):
            db.execute("INSERT INTO t (payload) VALUES (?)", (bytes([k % 251]) * row_bytes,))
            k += 1
        db.execute("COMMIT")
    n = db.execute("SELECT count(*) FROM t").fetchone()[0]
    db.close()
    if n != commits * rows:
        sys.exit(f"sqlite_inserts: {n} rows, expected {commits * rows}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
