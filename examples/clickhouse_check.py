#!/usr/bin/env python3
"""Check that cdrship's JSON loads into the ClickHouse tables of examples/clickhouse.sql.

Runs cdrship (the asterisk-cdr preset, ClickHouse time format) over
examples/Master.csv with its embedded mock broker and --echo, and checks the
JSON. Then it runs the statements of examples/clickhouse.sql in chDB, which is
ClickHouse embedded in Python, one of two ways:

  * With KAFKA_BROKERS set (a real Kafka, as .ci/run has): all of them as
    written, only kafka_asterisk_cdr's broker list, topic and group pointed at
    that Kafka (a new topic and group per run). cdrship ships Master.csv to the
    topic as the file's comment says (--file, -k uniqueid, --meta --meta-as
    headers); the Kafka engine consumes it and the two materialized views fill
    asterisk_cdr and asterisk_cdr_dedup, polled until they hold every line (60 s
    at most); then cdrship is stopped with SIGTERM and must exit 0.
  * Without it: asterisk_cdr and asterisk_cdr_consumer as written, and
    kafka_asterisk_cdr with ENGINE = Kafka replaced by a Memory table that also
    has the Kafka virtual columns as plain columns. An INSERT of the echoed
    lines into the stand-in fires asterisk_cdr_consumer just as a consumed
    Kafka block would.

The stored rows are then compared with the CSV. Either way the deduplicating
pair (asterisk_cdr_dedup, asterisk_cdr_dedup_consumer) also gets every line
twice through the Memory stand-in, as a replay after a crash sends it, with the
same cdrship.id header; its FINAL query must count each line once.

chDB's Kafka engine works, but not after `import chdb`: that import opens a
connection to read chdb.engine_version and closes it, and closing shuts the
embedded ClickHouse down, which (since ClickHouse 26.3, PR #96020) marks the
process-wide registry of streaming tables as shut down for good. Every Kafka
table created later in that process fails with "Code: 49. DB::Exception:
Shutdown was called. (LOGICAL_ERROR)" (chDB 4.4.0, ClickHouse 26.9.2.1), and
importing chdb after loading its engine module otherwise crashes. So this
script never imports the chdb package: it loads chDB's engine module (_chdb)
from the installed package and uses its connections directly, the Kafka one
first.

The lines are inserted with FORMAT JSONEachRow, input_format_skip_unknown_fields=0
(a field with no column is an error) and date_time_input_format='basic'.

    pip install chdb
    python3 examples/clickhouse_check.py      # CDRSHIP=path/to/cdrship to pick the binary
    KAFKA_BROKERS=127.0.0.1:9092 python3 examples/clickhouse_check.py

Exits 0 and prints one summary line if everything matches, else 1.
"""

import csv
import datetime
import importlib.machinery
import importlib.metadata
import importlib.util
import itertools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
CSV_PATH = ROOT / "examples" / "Master.csv"
SQL_PATH = ROOT / "examples" / "clickhouse.sql"
CDRSHIP = os.environ.get("CDRSHIP", str(ROOT / "target" / "debug" / "cdrship"))
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

# The Kafka run: cdrship's --host-id, and how long the tables may take to fill.
HOST_ID = "pbx-check"
CONSUME_SECONDS = 60
INSERT_SETTINGS = ("SETTINGS input_format_skip_unknown_fields = 0, "
                   "date_time_input_format = 'basic' FORMAT JSONEachRow\n")

failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def load_chdb():
    """chDB's engine module, loaded from the installed chdb package without
    running its __init__.py (see the docstring: `import chdb` shuts down the
    Kafka engine for the whole process)."""
    spec = importlib.util.find_spec("chdb")
    if spec is None:
        sys.exit("FAIL: chDB is not installed (pip install chdb)")
    for folder in spec.submodule_search_locations:
        for path in Path(folder).glob("_chdb*.so"):
            loader = importlib.machinery.ExtensionFileLoader("_chdb", str(path))
            module = importlib.util.module_from_spec(
                importlib.util.spec_from_file_location("_chdb", path, loader=loader))
            loader.exec_module(module)
            return module
    sys.exit(f"FAIL: no _chdb*.so in {spec.submodule_search_locations}")


CHDB = load_chdb()


def query(conn, sql):
    """The rows a statement returns, as dicts."""
    text = conn.query(sql, "JSONEachRow").bytes().decode("utf-8")
    return [json.loads(row) for row in text.splitlines() if row.strip()]


def run_cdrship():
    cmd = [CDRSHIP, "-X", "test.mock.num.brokers=1", "-t", "demo", "-f", "json",
           "--preset", "asterisk-cdr", "--time-format", "clickhouse",
           "--timezone", PBX_ZONE, "--echo"]
    with open(CSV_PATH, "rb") as stdin:
        try:
            proc = subprocess.run(cmd, stdin=stdin, capture_output=True, timeout=120)
        except FileNotFoundError:
            sys.exit(f"FAIL: no cdrship binary at {CDRSHIP} (build it, or set CDRSHIP)")
    if proc.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {proc.returncode}:\n"
                 + proc.stderr.decode(errors="replace"))
    return [line for line in proc.stdout.decode("utf-8").split("\n") if line]


def sql_statements():
    """The statements of clickhouse.sql, keyed by the name they create, in file order.
    Comments are removed first. This assumes that no string literal in the
    file contains '--' or ';'."""
    text = re.sub(r"--[^\n]*", "", SQL_PATH.read_text(encoding="utf-8"))
    statements = {}
    for stmt in filter(None, (s.strip() for s in text.split(";"))):
        m = re.match(r"CREATE\s+(?:MATERIALIZED\s+VIEW|TABLE)\s+(\w+)", stmt, re.I)
        if m:
            statements[m.group(1)] = stmt
    for name in ("asterisk_cdr", "kafka_asterisk_cdr", "asterisk_cdr_consumer",
                 "asterisk_cdr_dedup", "asterisk_cdr_dedup_consumer"):
        if name not in statements:
            sys.exit(f"FAIL: no CREATE ... {name} in {SQL_PATH}")
    return statements


def memory_stand_in(statements):
    """kafka_asterisk_cdr as a Memory table with the Kafka virtual columns."""
    stand_in, n = re.subn(r"\)\s*ENGINE\s*=\s*Kafka\b.*\Z", KAFKA_VIRTUALS + ") ENGINE = Memory",
                          statements["kafka_asterisk_cdr"], flags=re.S | re.I)
    if n != 1:
        sys.exit(f"FAIL: kafka_asterisk_cdr in {SQL_PATH} has no ENGINE = Kafka clause at its end")
    return stand_in


def read_back(conn):
    """asterisk_cdr's rows and a summary of them."""
    stored = query(conn, "SELECT * FROM asterisk_cdr ORDER BY start, uniqueid")
    [summary] = query(conn,
        "SELECT count() AS rows, countIf(answer IS NULL) AS null_answers, "
        "countIf(toYear(answer) = 1970 OR toYear(start) = 1970 OR toYear(end) = 1970) AS in_1970, "
        "sum(billsec) AS billsec, sum(duration) AS duration FROM asterisk_cdr")
    return stored, summary


def through_memory(statements, lines):
    """Insert the echoed lines into the Memory stand-in; asterisk_cdr read back."""
    conn = CHDB.connect(":memory:")
    try:
        conn.query(statements["asterisk_cdr"])
        conn.query(memory_stand_in(statements))
        conn.query(statements["asterisk_cdr_consumer"])
        conn.query("INSERT INTO kafka_asterisk_cdr " + INSERT_SETTINGS + "\n".join(lines))
        return read_back(conn)
    except RuntimeError as e:
        sys.exit(f"FAIL: ClickHouse refused: {e}")
    finally:
        conn.close()


def check_dedup(statements, lines):
    """Feed every line twice (same cdrship.id) through the dedup pair; the
    counts its FINAL query gives, and that the copies did reach the table."""
    with_ids = []
    for n, line in enumerate(lines):
        obj = json.loads(line)
        obj["_headers.name"] = ["cdrship.id"]
        obj["_headers.value"] = [f"2049:131:00000000cafe0001@{(n + 1) * 100}"]
        with_ids.append(json.dumps(obj, ensure_ascii=False))
    conn = CHDB.connect(":memory:")
    try:
        conn.query(statements["asterisk_cdr_dedup"])
        conn.query(memory_stand_in(statements))
        conn.query(statements["asterisk_cdr_dedup_consumer"])
        for _ in range(2):
            conn.query("INSERT INTO kafka_asterisk_cdr " + INSERT_SETTINGS + "\n".join(with_ids))
        [stored] = query(conn, "SELECT count() AS n FROM asterisk_cdr_dedup")
        [final] = query(conn, "SELECT count() AS rows, sum(billsec) AS billsec "
                              "FROM asterisk_cdr_dedup FINAL")
    except RuntimeError as e:
        sys.exit(f"FAIL: ClickHouse refused the dedup tables: {e}")
    finally:
        conn.close()
    check(int(stored["n"]) == 2 * len(lines),
          f"asterisk_cdr_dedup holds {stored['n']} rows before FINAL, expected both copies")
    return {"rows": int(final["rows"]), "billsec": int(final["billsec"])}


def create_topics(brokers, names):
    """Create topics with the broker's default partitions and replication
    (CreateTopics v4 on the wire: the check needs no Kafka client library)."""
    def string(text):
        data = text.encode()
        return struct.pack(">h", len(data)) + data

    def read(sock, n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError(f"{brokers} closed the connection")
            data += chunk
        return data

    request = (struct.pack(">hhi", 19, 4, 1) + string("clickhouse_check")  # api key, version, id
               + struct.pack(">i", len(names))
               + b"".join(string(name) + struct.pack(">ihii", -1, -1, 0, 0) for name in names)
               + struct.pack(">ib", 30000, 0))  # timeout ms, validate only
    host, port = brokers.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=40) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        reply = read(sock, struct.unpack(">i", read(sock, 4))[0])
    pos = 12  # correlation id, throttle time, topic count; then name, error code, message
    for _ in names:
        (name_size,) = struct.unpack_from(">h", reply, pos)
        name = reply[pos + 2:pos + 2 + name_size].decode()
        pos += 2 + name_size
        code, message_size = struct.unpack_from(">hh", reply, pos)
        message_size = max(message_size, 0)  # -1: no message
        message = reply[pos + 4:pos + 4 + message_size].decode()
        pos += 4 + message_size
        if code:
            sys.exit(f"FAIL: creating topic {name} on {brokers}: Kafka error {code}: {message}")


def pointed_at(kafka_table, brokers, topic, group):
    """kafka_asterisk_cdr as written, reading `topic` as `group` from `brokers`."""
    for setting, value in (("kafka_broker_list", brokers), ("kafka_topic_list", topic),
                           ("kafka_group_name", group)):
        kafka_table, n = re.subn(rf"\b{setting}\s*=\s*'[^']*'", f"{setting} = '{value}'", kafka_table)
        if n != 1:
            sys.exit(f"FAIL: kafka_asterisk_cdr in {SQL_PATH} has no {setting} = '...'")
    return kafka_table


def start_shipping(brokers, topic):
    """cdrship following Master.csv into `topic`, with the options clickhouse.sql gives."""
    cmd = [CDRSHIP, "-b", brokers, "-t", topic, "--file", str(CSV_PATH),
           "-f", "json", "--preset", "asterisk-cdr", "--time-format", "clickhouse",
           "--timezone", PBX_ZONE, "-k", "uniqueid", "--meta", "--meta-as", "headers",
           "--host-id", HOST_ID]
    try:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        sys.exit(f"FAIL: no cdrship binary at {CDRSHIP} (build it, or set CDRSHIP)")


def wait_until_consumed(conn, shipper, expected):
    """Poll until both MergeTrees hold `expected` rows; fail at the deadline
    with what the Kafka engine reports, or as soon as cdrship exits."""
    deadline = time.monotonic() + CONSUME_SECONDS
    while True:
        [counts] = query(conn, "SELECT (SELECT count() FROM asterisk_cdr) AS main, "
                               "(SELECT count() FROM asterisk_cdr_dedup) AS dedup")
        if int(counts["main"]) >= expected and int(counts["dedup"]) >= expected:
            return
        if shipper.poll() is not None:
            sys.exit(f"FAIL: cdrship exited {shipper.returncode} while shipping:\n"
                     + shipper.communicate()[1].decode(errors="replace"))
        if time.monotonic() > deadline:
            consumers = query(conn, "SELECT num_messages_read, exceptions.text AS errors "
                                    "FROM system.kafka_consumers")
            sys.exit(f"FAIL: after {CONSUME_SECONDS} s asterisk_cdr holds {counts['main']} and "
                     f"asterisk_cdr_dedup {counts['dedup']} of {expected} rows; "
                     f"Kafka consumers: {consumers}")
        time.sleep(0.2)


def stop_shipping(shipper):
    shipper.send_signal(signal.SIGTERM)
    _, stderr = shipper.communicate(timeout=60)
    check(shipper.returncode == 0, f"cdrship exited {shipper.returncode} on SIGTERM:\n"
          + stderr.decode(errors="replace"))


def through_kafka(statements, brokers, expected):
    """clickhouse.sql against the real Kafka, fed by cdrship; asterisk_cdr read
    back, and the FINAL counts of asterisk_cdr_dedup."""
    name = f"clickhouse-check-{os.getpid()}-{time.time_ns()}"
    create_topics(brokers, [name, f"{name}.rejects"])
    sql = dict(statements, kafka_asterisk_cdr=pointed_at(
        statements["kafka_asterisk_cdr"], brokers, name, name))
    with tempfile.TemporaryDirectory() as db:
        conn = CHDB.connect(f"file:{db}")
        shipper = None
        try:
            for statement in sql.values():
                conn.query(statement)
            shipper = start_shipping(brokers, name)
            wait_until_consumed(conn, shipper, expected)
            stop_shipping(shipper)
            stored, summary = read_back(conn)
            [dedup] = query(conn, "SELECT count() AS rows, uniqExact(cdrship_id) AS ids, "
                                  "countIf(cdrship_id = '') AS no_id FROM asterisk_cdr_dedup FINAL")
        except RuntimeError as e:
            sys.exit(f"FAIL: ClickHouse refused: {e}")
        finally:
            if shipper is not None and shipper.poll() is None:
                shipper.kill()
            conn.close()
    check(int(dedup["rows"]) == expected and int(dedup["ids"]) == expected
          and int(dedup["no_id"]) == 0,
          f"asterisk_cdr_dedup FINAL from Kafka: {dedup}, expected {expected} distinct cdrship.id")
    return stored, summary


def line_ends():
    """The byte offset after each line of Master.csv (cdrship.offset)."""
    lines = CSV_PATH.read_bytes().split(b"\n")[:-1]
    return list(itertools.accumulate(len(line) + 1 for line in lines))


def utc(local_text):
    """A PBX local time from the CSV as the UTC text ClickHouse shows, or None if empty."""
    if not local_text:
        return None
    local = datetime.datetime.strptime(local_text, "%Y-%m-%d %H:%M:%S")
    local = local.replace(tzinfo=ZoneInfo(PBX_ZONE))
    return local.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def check_json(lines, csv_rows):
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


def check_rows(stored, csv_rows, metadata):
    """Each CSV line against its asterisk_cdr row; `metadata` gives each line's
    _host, _source and _source_offset. Returns how many Cyrillic clids were checked."""
    by_id = {r["uniqueid"]: r for r in stored}
    cyrillic = 0
    for fields, meta in zip(csv_rows, metadata):
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
        expected.update(meta)
        for key, want in expected.items():
            got = row.get(key)
            if key in ("duration", "billsec", "_source_offset"):
                got = int(got)  # ClickHouse may quote 64-bit integers in JSON output
            check(got == want, f"{uid}: {key} is {got!r}, expected {want!r}")
        if re.search("[\u0400-\u04ff]", fields[4]):
            cyrillic += 1
    check(cyrillic > 0, "no Cyrillic clid in the sample, so none was checked")
    return cyrillic


def main():
    with open(CSV_PATH, encoding="utf-8", newline="") as f:
        csv_rows = [r for r in csv.reader(f) if r]
    lines = run_cdrship()
    check_json(lines, csv_rows)
    statements = sql_statements()
    brokers = os.environ.get("KAFKA_BROKERS")
    if brokers:
        # This is the first chDB connection, as it must be (see the docstring).
        stored, summary = through_kafka(statements, brokers, len(csv_rows))
        ends = line_ends()
        check(len(ends) == len(csv_rows), f"{len(ends)} lines in {CSV_PATH}, {len(csv_rows)} records")
        metadata = [{"_host": HOST_ID, "_source": str(CSV_PATH), "_source_offset": end}
                    for end in ends]
        through = f"Kafka engine on {brokers}"
    else:
        stored, summary = through_memory(statements, lines)
        # no --meta: the metadata columns keep their defaults
        metadata = [{"_host": "", "_source": "", "_source_offset": 0}] * len(csv_rows)
        through = "Memory stand-in for the Kafka table"

    dedup = check_dedup(statements, lines)
    check(dedup["rows"] == len(csv_rows),
          f"asterisk_cdr_dedup FINAL has {dedup['rows']} rows for {len(csv_rows)} CSV lines")
    check(dedup["billsec"] == int(summary["billsec"]),
          f"asterisk_cdr_dedup FINAL sums billsec {dedup['billsec']}, not {summary['billsec']}")

    rows = int(summary["rows"])
    check(rows == len(csv_rows), f"asterisk_cdr has {rows} rows for {len(csv_rows)} CSV lines")
    check(int(summary["in_1970"]) == 0, f"{summary['in_1970']} rows have a 1970 date/time")
    cyrillic = check_rows(stored, csv_rows, metadata)

    if failures:
        for message in failures:
            print("FAIL:", message, file=sys.stderr)
        return 1
    conn = CHDB.connect(":memory:")
    engine = conn.query("SELECT version()", "CSV").bytes().decode().strip().strip('"')
    conn.close()
    print(f"clickhouse (chDB {importlib.metadata.version('chdb')}, engine {engine}, {through}): "
          f"{rows} rows, {summary['null_answers']} NULL answers, {cyrillic} Cyrillic clids intact, "
          f"sum(duration)={summary['duration']}, sum(billsec)={summary['billsec']}; "
          f"dedup FINAL {dedup['rows']} rows from {2 * len(lines)} sent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
