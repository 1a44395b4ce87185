#!/usr/bin/env python3
"""Check that cdrship's JSON loads into the ClickHouse tables of examples/clickhouse.sql.

Runs cdrship (the asterisk-cdr preset, ClickHouse time format) over
examples/Master.csv with its embedded mock broker and --echo. Then it loads the
echoed JSON lines into chDB, which is ClickHouse embedded in Python, using the
statements of examples/clickhouse.sql:

  * asterisk_cdr (MergeTree) and asterisk_cdr_consumer (materialized view) as written;
  * kafka_asterisk_cdr with its columns as written, but ENGINE = Kafka replaced by a
    Memory table that also has the Kafka virtual columns as plain columns.
    chDB cannot run Kafka consumers, and an INSERT into the stand-in fires
    asterisk_cdr_consumer just as a consumed Kafka block would.

Then the deduplicating pair (asterisk_cdr_dedup, asterisk_cdr_dedup_consumer)
gets every line twice, as a replay after a crash sends it, with the same
cdrship.id header; its FINAL query must count each line once.

The lines are inserted with FORMAT JSONEachRow, input_format_skip_unknown_fields=0
(a field with no column is an error) and date_time_input_format='basic'. The
stored rows are then compared with the CSV.

    pip install chdb
    python3 examples/clickhouse_check.py      # CDRSHIP=path/to/cdrship to pick the binary

Exits 0 and prints one summary line if everything matches, else 1.
"""

import csv
import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import chdb
from chdb import session

ROOT = Path(__file__).resolve().parent.parent
CSV_PATH = ROOT / "examples" / "Master.csv"
SQL_PATH = ROOT / "examples" / "clickhouse.sql"
PBX_ZONE = "Europe/Moscow"
# Master.csv's fields, in order (cdr_csv with loguniqueid and loguserfield)
CSV_COLUMNS = ["accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel",
               "lastapp", "lastdata", "start", "answer", "end", "duration", "billsec",
               "disposition", "amaflags", "uniqueid", "userfield"]

# Kafka engine virtual columns, which the stand-in for kafka_asterisk_cdr declares as
# plain columns so that asterisk_cdr_consumer's SELECT can refer to them.
KAFKA_VIRTUALS = """,
    _topic LowCardinality(String), _key String, _offset UInt64, _partition UInt64,
    _timestamp Nullable(DateTime), _timestamp_ms Nullable(DateTime64(3)),
    `_headers.name` Array(String), `_headers.value` Array(String)
"""

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def run_cdrship():
    binary = os.environ.get("CDRSHIP", str(ROOT / "target" / "debug" / "cdrship"))
    cmd = [binary, "-X", "test.mock.num.brokers=1", "-t", "demo", "-f", "json",
           "--preset", "asterisk-cdr", "--time-format", "clickhouse",
           "--timezone", PBX_ZONE, "--echo"]
    with open(CSV_PATH, "rb") as stdin:
        try:
            proc = subprocess.run(cmd, stdin=stdin, capture_output=True, timeout=120)
        except FileNotFoundError:
            sys.exit(f"FAIL: no cdrship binary at {binary} (build it, or set CDRSHIP)")
    if proc.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {proc.returncode}:\n"
                 + proc.stderr.decode(errors="replace"))
    return [line for line in proc.stdout.decode("utf-8").split("\n") if line]


def sql_statements():
    """The statements of clickhouse.sql, keyed by the name they create.
    Comments are removed first. This assumes that no string literal in the
    file contains '--' or ';'."""
    text = re.sub(r"--[^\n]*", "", SQL_PATH.read_text(encoding="utf-8"))
    statements = {}
    for stmt in filter(None, (s.strip() for s in text.split(";"))):
        m = re.match(r"CREATE\s+(?:MATERIALIZED\s+VIEW|TABLE)\s+(\w+)", stmt, re.I)
        if m:
            statements[m.group(1)] = stmt
    return statements


def check_dedup(statements, stand_in, lines):
    """Feed every line twice (same cdrship.id) through the dedup pair; the
    counts its FINAL query gives, and that the copies did reach the table."""
    for name in ("asterisk_cdr_dedup", "asterisk_cdr_dedup_consumer"):
        if name not in statements:
            sys.exit(f"FAIL: no CREATE ... {name} in {SQL_PATH}")
    with_ids = []
    for n, line in enumerate(lines):
        obj = json.loads(line)
        obj["_headers.name"] = ["cdrship.id"]
        obj["_headers.value"] = [f"2049:131:00000000cafe0001@{(n + 1) * 100}"]
        with_ids.append(json.dumps(obj, ensure_ascii=False))
    sess = session.Session()
    try:
        sess.query(statements["asterisk_cdr_dedup"])
        sess.query(stand_in)
        sess.query(statements["asterisk_cdr_dedup_consumer"])
        for _ in range(2):
            sess.query("INSERT INTO kafka_asterisk_cdr SETTINGS input_format_skip_unknown_fields = 0, "
                       "date_time_input_format = 'basic' FORMAT JSONEachRow\n" + "\n".join(with_ids))
        stored = json.loads(str(sess.query("SELECT count() AS n FROM asterisk_cdr_dedup", "JSONEachRow")))
        final = json.loads(str(sess.query(
            "SELECT count() AS rows, sum(billsec) AS billsec FROM asterisk_cdr_dedup FINAL",
            "JSONEachRow")))
    except Exception as e:  # chDB raises RuntimeError or its own ChdbError
        sys.exit(f"FAIL: ClickHouse refused the dedup tables: {e}")
    finally:
        sess.close()
    check(int(stored["n"]) == 2 * len(lines),
          f"asterisk_cdr_dedup holds {stored['n']} rows before FINAL, expected both copies")
    return {"rows": int(final["rows"]), "billsec": int(final["billsec"])}


def utc(local_text):
    """A PBX local time from the CSV as the UTC text ClickHouse shows, or None if empty."""
    if not local_text:
        return None
    local = datetime.datetime.strptime(local_text, "%Y-%m-%d %H:%M:%S")
    local = local.replace(tzinfo=ZoneInfo(PBX_ZONE))
    return local.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def main():
    with open(CSV_PATH, encoding="utf-8", newline="") as f:
        csv_rows = [r for r in csv.reader(f) if r]
    lines = run_cdrship()
    check(len(lines) == len(csv_rows),
          f"cdrship echoed {len(lines)} lines for {len(csv_rows)} CSV lines")

    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError as e:
            failures.append(f"not JSON ({e}): {line}")
            continue
        for key in ("duration", "billsec"):
            value = obj.get(key)
            # bool is a subclass of int in Python, so it is excluded explicitly
            check(type(value) is int, f"{key} is not a JSON integer: {value!r} in {line}")

    statements = sql_statements()
    for name in ("asterisk_cdr", "kafka_asterisk_cdr", "asterisk_cdr_consumer"):
        if name not in statements:
            sys.exit(f"FAIL: no CREATE ... {name} in {SQL_PATH}")
    stand_in, n = re.subn(r"\)\s*ENGINE\s*=\s*Kafka\b.*\Z", KAFKA_VIRTUALS + ") ENGINE = Memory",
                          statements["kafka_asterisk_cdr"], flags=re.S | re.I)
    if n != 1:
        sys.exit(f"FAIL: kafka_asterisk_cdr in {SQL_PATH} has no ENGINE = Kafka clause at its end")

    sess = session.Session()
    try:
        sess.query(statements["asterisk_cdr"])
        sess.query(stand_in)
        sess.query(statements["asterisk_cdr_consumer"])
        sess.query("INSERT INTO kafka_asterisk_cdr SETTINGS input_format_skip_unknown_fields = 0, "
                   "date_time_input_format = 'basic' FORMAT JSONEachRow\n" + "\n".join(lines))
        stored = [json.loads(r) for r in
                  str(sess.query("SELECT * FROM asterisk_cdr ORDER BY start, uniqueid", "JSONEachRow")).splitlines()
                  if r.strip()]
        summary = json.loads(str(sess.query(
            "SELECT count() AS rows, countIf(answer IS NULL) AS null_answers, "
            "countIf(toYear(answer) = 1970 OR toYear(start) = 1970 OR toYear(end) = 1970) AS in_1970, "
            "sum(billsec) AS billsec, sum(duration) AS duration FROM asterisk_cdr", "JSONEachRow")))
    except Exception as e:  # chDB raises RuntimeError or its own ChdbError
        sys.exit(f"FAIL: ClickHouse refused: {e}")
    finally:
        sess.close()

    dedup = check_dedup(statements, stand_in, lines)
    check(dedup["rows"] == len(csv_rows),
          f"asterisk_cdr_dedup FINAL has {dedup['rows']} rows for {len(csv_rows)} CSV lines")
    check(dedup["billsec"] == int(summary["billsec"]),
          f"asterisk_cdr_dedup FINAL sums billsec {dedup['billsec']}, not {summary['billsec']}")

    rows = int(summary["rows"])
    check(rows == len(csv_rows), f"asterisk_cdr has {rows} rows for {len(csv_rows)} CSV lines")
    check(int(summary["in_1970"]) == 0, f"{summary['in_1970']} rows have a 1970 date/time")

    by_id = {r["uniqueid"]: r for r in stored}
    cyrillic = 0
    for fields in csv_rows:
        uid = fields[16]
        row = by_id.get(uid)
        if row is None:
            failures.append(f"uniqueid {uid} missing from asterisk_cdr")
            continue
        # A 17-field line has no userfield: cdrship leaves it out, ClickHouse stores ''.
        expected = dict(zip(CSV_COLUMNS, fields + [""] * (len(CSV_COLUMNS) - len(fields))))
        for key in ("start", "answer", "end"):
            expected[key] = utc(expected[key])
        for key in ("duration", "billsec"):
            expected[key] = int(expected[key])
        # no --meta: the metadata columns keep their defaults
        expected.update({"_host": "", "_source": "", "_source_offset": 0})
        for key, want in expected.items():
            got = row.get(key)
            if key in ("duration", "billsec", "_source_offset"):
                got = int(got)  # ClickHouse may quote 64-bit integers in JSON output
            check(got == want, f"{uid}: {key} is {got!r}, expected {want!r}")
        if re.search("[\u0400-\u04ff]", fields[4]):
            cyrillic += 1
    check(cyrillic > 0, "no Cyrillic clid in the sample, so none was checked")

    if failures:
        for message in failures:
            print("FAIL:", message, file=sys.stderr)
        return 1
    print(f"clickhouse (chDB {chdb.__version__}, engine {chdb.engine_version}): "
          f"{rows} rows, {summary['null_answers']} NULL answers, {cyrillic} Cyrillic clids intact, "
          f"sum(duration)={summary['duration']}, sum(billsec)={summary['billsec']}; "
          f"dedup FINAL {dedup['rows']} rows from {2 * len(lines)} sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
