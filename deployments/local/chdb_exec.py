#!/usr/bin/env python3
"""Run a set of SQL statements in one throw-away chDB session (embedded ClickHouse).

Used by Go tests to check Vigil's modern ClickHouse DDL against a modern engine
without a server. Install chDB first: deployments/local/chdb.sh

USAGE
    chdb_exec.py [--format FMT] [--verbose] [--cluster NAME] [FILE | -]
    (no FILE or "-" reads stdin)

    --cluster NAME  the session's config defines cluster NAME of one shard
                    whose one replica is the session itself, so that
                    Distributed(NAME, db, table, key) tables work (reads and
                    inserts go to the local table). ON CLUSTER and the
                    Replicated engines still need a server with ZooKeeper:
                    chDB creates a Replicated table against a ZooKeeper, but
                    an INSERT into it hangs (checked with chDB 4.4.0).

INPUT: how statements are separated
    * Preferred: a line containing only ";;" (surrounding blanks allowed) ends
      a statement. Then ";" is never special, so literals or comments may hold
      semicolons anywhere.
    * Fallback, used only when the input has no ";;" line at all: a line whose
      last non-blank character is ";" ends a statement (plain .sql files with
      one statement per ";"-terminated block). A ";" in the middle of a line
      does not split.
    A trailing ";" on a statement is dropped. Chunks holding only blanks and
    "--" comment lines are skipped.

OUTPUT / EXIT CODE
    Each statement's result is written to stdout in FMT (default TSV, e.g. also
    TSVWithNames, CSV, JSONEachRow), in order; DDL and INSERT print nothing.
    On the first failing statement: the error, the statement number and its
    first line number, and the statement text go to stderr, exit 1.
    Exit 2: usage error or chdb not importable. Exit 0: all statements ran.

WHAT chDB OFFERS (checked 2026-11-26 on this machine, Python 3.11)
    * PyPI `chdb` 4.4.0 = Python API, depends on `chdb-core` 26.9.0 (the native
      engine, a ~wheel, no server) + pandas + pyarrow. `pip install chdb`
      takes ~20 s. chdb.query("SELECT version()") -> 26.9.2.1 (timezone Etc/UTC).
    * chdb.session.Session(path) keeps databases/tables across queries in a
      directory (this script uses a temp dir, deleted at exit). One session
      per process at a time.
    * Worked in a Session: CREATE DATABASE; CREATE TABLE with MergeTree,
      ReplacingMergeTree(version), SummingMergeTree, AggregatingMergeTree with
      AggregateFunction(quantiles(..), Float64) columns; LowCardinality(String),
      DateTime64(3), UUID, Map, Nullable, Array, Enum8, the new JSON type;
      PARTITION BY toYYYYMM(ts); TTL toDateTime(ts) + INTERVAL 90 DAY;
      CODEC(Delta, ZSTD(3)) / CODEC(ZSTD(1)); SETTINGS index_granularity;
      INSERT ... VALUES; SELECT ... FINAL (deduplicates ReplacingMergeTree
      rows); OPTIMIZE TABLE ... FINAL; SHOW CREATE TABLE; quantileTDigest,
      uniqExact. Materialized views need a real source table (not a table
      function), as in server ClickHouse.
    * Errors raise chdb.ChdbError with the server's "Code: NN. DB::Exception"
      text; the session stays usable afterwards.
    * Not usable: the Kafka table engine (creating one fails with
      "Shutdown was called"); chDB is not a network server, so Go code that
      speaks the native/HTTP protocol cannot connect to it - use it for DDL and
      SQL semantics only.
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

PROG = "chdb_exec"
_DSEMI = re.compile(r"^\s*;;\s*$")


def split_statements(text):
    """Return [(first_line_number, statement_text)] per the rules above."""
    lines = text.splitlines()
    use_dsemi = any(_DSEMI.match(line) for line in lines)
    out, buf, start = [], [], None

    def flush():
        nonlocal buf, start
        stmt = "\n".join(buf).strip()
        if stmt.endswith(";"):
            stmt = stmt[:-1].rstrip()
        meaningful = [
            l for l in stmt.splitlines() if l.strip() and not l.strip().startswith("--")
        ]
        if meaningful:
            out.append((start, stmt))
        buf, start = [], None

    for no, line in enumerate(lines, 1):
        if use_dsemi and _DSEMI.match(line):
            flush()
            continue
        if start is None and line.strip():
            start = no
        buf.append(line)
        if not use_dsemi and line.rstrip().endswith(";"):
            flush()
    flush()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog=PROG, description="Run SQL statements in one temporary chDB session."
    )
    ap.add_argument("file", nargs="?", default="-", help="SQL file (default: stdin)")
    ap.add_argument("--format", "-f", default="TSV", help="output format (default TSV)")
    ap.add_argument("--verbose", "-v", action="store_true", help="echo statements to stderr")
    ap.add_argument("--cluster", help="define a one-shard cluster of this name on the session itself")
    args = ap.parse_args(argv)

    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as e:
        print(f"{PROG}: cannot read {args.file}: {e}", file=sys.stderr)
        return 2

    try:
        from chdb import session as chs
    except ImportError as e:
        print(
            f"{PROG}: cannot import chdb ({e}); run deployments/local/chdb.sh",
            file=sys.stderr,
        )
        return 2

    stmts = split_statements(text)
    tmp = tempfile.mkdtemp(prefix="vigil-chdb-")
    sess = None
    try:
        path = os.path.join(tmp, "data")
        if args.cluster:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.cluster):
                print(f"{PROG}: --cluster {args.cluster!r}: want an identifier", file=sys.stderr)
                return 2
            # The replica is local (the session answers it in process) when
            # its host is a local address and its port the config's tcp_port;
            # nothing listens there.
            cfg = os.path.join(tmp, "config.xml")
            with open(cfg, "w", encoding="utf-8") as fh:
                fh.write(
                    "<clickhouse><tcp_port>19999</tcp_port><remote_servers><%s><shard><replica>"
                    "<host>127.0.0.1</host><port>19999</port></replica></shard></%s></remote_servers></clickhouse>\n"
                    % (args.cluster, args.cluster)
                )
            path += "?config-file=" + cfg
        sess = chs.Session(path)
        out = sys.stdout.buffer
        for i, (line_no, stmt) in enumerate(stmts, 1):
            if args.verbose:
                print(f"{PROG}: [{i}/{len(stmts)}] line {line_no}: {stmt.splitlines()[0]}", file=sys.stderr)
            try:
                res = sess.query(stmt, args.format)
                if hasattr(res, "has_error") and res.has_error():
                    raise RuntimeError(res.error_message())
            except Exception as e:  # chdb.ChdbError and friends
                out.flush()
                print(
                    f"{PROG}: statement {i} of {len(stmts)} (line {line_no}) failed: {e}\n"
                    f"--- statement ---\n{stmt}\n-----------------",
                    file=sys.stderr,
                )
                return 1
            data = res.bytes() if hasattr(res, "bytes") else str(res).encode()
            if data:
                out.write(data)
        out.flush()
        if args.verbose:
            print(f"{PROG}: {len(stmts)} statement(s) ok", file=sys.stderr)
        return 0
    finally:
        if sess is not None:
            try:
                sess.close()
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
