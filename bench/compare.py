#!/usr/bin/env python3
"""cdrship next to `kcat -P`, every mode, same broker, same run.

Generates LINES realistic Asterisk Master.csv lines (the sample file with
unique ids: quoted fields, Cyrillic names), starts librdkafka's mock cluster
in its own process (examples/mock_broker.rs; or uses KAFKA_BROKERS), and runs
ROUNDS alternating rounds of:

  kcat      kcat -P from stdin, acks=all, idempotence, linger.ms=5
  raw       cdrship from stdin, raw lines
  json      cdrship from stdin, -f json --preset asterisk-cdr
  kcat-json kcat -P shipping the JSON that `json` makes (rendered once by
            cdrship before the rounds): what the JSON bytes alone cost
  kcat-json-bounded  the same with cdrship's producer queue bound (50,000
            messages, 3 MiB) instead of librdkafka's default (100,000, 1 GiB)
  file      cdrship --file on the lines already on disk, saving progress
  file-eo   the same with --exactly-once (read-back state saved with it)
  spool     cdrship from stdin with --spool-dir (a fresh spool each run)
  spool-eo  the same with --exactly-once (each line sent with its id header)
  tcp-1     cdrship --listen, the lines over one connection
  tcp-16    cdrship --listen, the lines over 16 connections

stdin modes are timed by /usr/bin/time -v until exit (every line
acknowledged); file and TCP modes from start until the metrics endpoint
reports every line delivered. Then a memory probe: MEMLINES raw lines from
stdin with the broker down for OUTAGE seconds in the middle; peak RSS.

usage: bench/compare.py [LINES] [ROUNDS] [MEMLINES] [OUTAGE]
       (defaults 1000000 3 10000000 60; MEMLINES 0 skips the probe)
CDRSHIP_BENCH_MODES=kcat,file,file-eo runs only those modes (kcat is always
run, the ratios need it) and prints the table without recording it.
Prints a markdown report (machine, table, memory probe) and writes it into
bench/RESULTS.md between its `<!-- compare.py -->` markers; the analysis
around them is written by hand.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

LINES = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
MEMLINES = int(sys.argv[3]) if len(sys.argv) > 3 else 10_000_000
OUTAGE = float(sys.argv[4]) if len(sys.argv) > 4 else 60
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench/RESULTS.md")
BEGIN, END = "<!-- compare.py: begin -->", "<!-- compare.py: end -->"
CDRSHIP = os.environ.get("CDRSHIP", os.path.join(ROOT, "target/release/cdrship"))
MOCK = os.path.join(ROOT, "target/release/examples/mock_broker")


def generate(path, n):
    sample = open(os.path.join(ROOT, "examples/Master.csv"), encoding="utf-8").read().splitlines()
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            line = sample[i % len(sample)].rstrip("\r")
            out.write(line.replace('"171', f'"{i}.171', 1) + "\n")


def time_v(path):
    """Wall seconds, CPU seconds and peak RSS (KiB) from /usr/bin/time -v."""
    text = open(path).read()
    cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    parts = re.search(r"Elapsed \(wall clock\) time.*: ([\d:.]+)", text).group(1).split(":")
    wall = 0.0
    for part in parts:
        wall = wall * 60 + float(part)
    return wall, cpu, rss


class Run:
    """A command under /usr/bin/time -v, stderr collected."""

    def __init__(self, work, args, stdin=subprocess.DEVNULL):
        self.timing = os.path.join(work, "time.txt")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(
            ["/usr/bin/time", "-v", "-o", self.timing] + args,
            stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.log = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def wait_log(self, pattern):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for line in list(self.log):
                found = re.search(pattern, line)
                if found:
                    return found.group(1)
            time.sleep(0.01)
        sys.exit(f"never logged {pattern}: {''.join(self.log)}")

    def terminate(self):
        """SIGTERM to cdrship itself (time(1) would not pass it on)."""
        pid = self.proc.pid
        for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
            os.kill(int(child), 15)

    def finish(self):
        if self.proc.wait() not in (0,):
            sys.exit(f"{self.proc.args} failed: {''.join(self.log)}")
        self.reader.join()
        return time_v(self.timing)


def delivered(metrics):
    with socket.create_connection(metrics) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        body = b""
        while chunk := s.recv(65536):
            body += chunk
    found = re.search(rb"cdrship_lines_delivered_total\{[^}]*\} (\d+)", body)
    return int(found.group(1)) if found else 0


def until_delivered(run, n):
    """Wall seconds from start until `n` lines are delivered; then stop."""
    host, port = run.wait_log(r"metrics on http://([\d.:]+)/metrics").rsplit(":", 1)
    metrics = (host, int(port))
    while delivered(metrics) < n:
        time.sleep(0.005)
    wall = time.monotonic() - run.start
    run.terminate()
    _, cpu, rss = run.finish()
    return wall, cpu, rss


def render(work, data, json_args):
    """The JSON cdrship makes of `data`, one object a line (its --echo on an
    embedded mock broker), for kcat to ship as raw lines."""
    path = os.path.join(work, "cdr.json")
    with open(data, "rb") as src, open(path, "wb") as out:
        subprocess.run([CDRSHIP, "-X", "test.mock.num.brokers=1", "-t", "bench", "-q", "--echo"]
                       + json_args, stdin=src, stdout=out, check=True)
    return path


def split(path, connections):
    """The lines of `path` dealt round-robin into `connections` chunks."""
    lines = open(path, "rb").read().splitlines(keepends=True)
    return [b"".join(lines[i::connections]) for i in range(connections)]


def stream(addr, chunks):
    """Send each chunk over its own TCP connection, all at once."""

    def send(chunk):
        with socket.create_connection(addr) as s:
            s.sendall(chunk)

    threads = [threading.Thread(target=send, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def machine():
    """One line: CPUs, RAM, and the kcat and cdrship builds compared."""
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), "unknown CPU")
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo")
               if line.startswith("MemTotal"))
    kcat = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    kcat = re.search(r"Version (\S+) .*?(librdkafka \S+)", kcat)
    cdrship = subprocess.run([CDRSHIP, "--version"], capture_output=True, text=True).stdout.strip()
    return (f"Machine: {os.cpu_count()} x {model}, {mem / 2**20:.0f} GiB RAM; "
            f"kcat {kcat.group(1)} ({kcat.group(2)}); {cdrship}; {time.strftime('%Y-%m-%d')}.")


def record(report):
    """Print the report and put it into RESULTS.md between the markers."""
    text = "\n".join(report)
    print(text)
    results = open(RESULTS, encoding="utf-8").read()
    if BEGIN in results and END in results:
        head, rest = results.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        with open(RESULTS, "w", encoding="utf-8") as out:
            out.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "cdrship",
                    "--example", "mock_broker", "--example", "topic"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp()
    data = os.path.join(work, "cdr.csv")
    generate(data, LINES)
    size = os.path.getsize(data)
    brokers = os.environ.get("KAFKA_BROKERS")
    broker = None
    if not brokers:
        broker = subprocess.Popen([MOCK, "bench", "4"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        brokers = broker.stdout.readline().strip()
    # CDRSHIP_BENCH_ARGS: more cdrship arguments for every mode (trying settings).
    topic = "bench"
    if broker is None:
        # A real cluster creates no topic on use: a fresh one per run.
        topic = f"bench-{os.getpid()}"
        subprocess.run([os.path.join(ROOT, "target/release/examples/topic"), topic, "4"],
                       check=True)
    base = [CDRSHIP, "-b", brokers, "-t", topic] + os.environ.get("CDRSHIP_BENCH_ARGS", "").split()

    def stdin_mode(args, path=data):
        with open(path, "rb") as f:
            return Run(work, args, stdin=f).finish()

    def file_mode(*extra):
        state = tempfile.mkdtemp(dir=work)
        run = Run(work, base + ["--file", data, "--state-dir", state, "--metrics", "127.0.0.1:0",
                                *extra])
        return until_delivered(run, LINES)

    # Split before any clock starts: the sender must not be what is timed.
    chunks = {n: split(data, n) for n in (1, 16)}

    def tcp_mode(connections):
        run = Run(work, base + ["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        host, port = run.wait_log(r"listening on ([\d.:]+)").rsplit(":", 1)
        threading.Thread(target=stream, args=((host, int(port)), chunks[connections])).start()
        return until_delivered(run, LINES)

    kcat = ["kcat", "-P", "-b", brokers, "-t", topic, "-X", "acks=all",
            "-X", "enable.idempotence=true", "-X", "linger.ms=5"]
    json_args = ["-f", "json", "--preset", "asterisk-cdr"]
    # cdrship's producer queue bound (src/sink/defaults.rs).
    CDRSHIP_QUEUE = ["-X", "queue.buffering.max.messages=50000",
                     "-X", "queue.buffering.max.kbytes=3072"]
    modes = [
        ("kcat", lambda: stdin_mode(kcat)),
        ("raw", lambda: stdin_mode(base + ["-q"])),
        ("json", lambda: stdin_mode(base + ["-q"] + json_args)),
        ("kcat-json", lambda: stdin_mode(kcat, rendered)),
        ("kcat-json-bounded", lambda: stdin_mode(kcat + CDRSHIP_QUEUE, rendered)),
        ("file", file_mode),
        ("file-eo", lambda: file_mode("--exactly-once")),
        ("spool", lambda: stdin_mode(base + ["-q", "--spool-dir", tempfile.mkdtemp(dir=work)])),
        ("spool-eo", lambda: stdin_mode(base + ["-q", "--spool-dir", tempfile.mkdtemp(dir=work),
                                               "--exactly-once"])),
        ("tcp-1", lambda: tcp_mode(1)),
        ("tcp-16", lambda: tcp_mode(16)),
    ]
    only = os.environ.get("CDRSHIP_BENCH_MODES")
    if only:
        wanted = set(only.split(",")) | {"kcat"}
        modes = [(name, measure) for name, measure in modes if name in wanted]
    if any(name.startswith("kcat-json") for name, _ in modes):
        rendered = render(work, data, json_args)
    results = {name: [] for name, _ in modes}
    for _ in range(ROUNDS):
        for name, measure in modes:
            results[name].append(measure())

    kcat_rate = LINES / (sum(r[0] for r in results["kcat"]) / ROUNDS)
    report = [
        machine(),
        "",
        f"{LINES:,} lines, {size / 1e6:.1f} MB, {ROUNDS} rounds alternating; broker "
        f"{'KAFKA_BROKERS=' + brokers if broker is None else 'librdkafka mock cluster (own process, 4 partitions)'}.",
        "",
        "| mode | lines/s | MB/s | x kcat | CPU s per M lines | peak RSS MiB |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for name, _ in modes:
        for wall, cpu, rss in results[name]:
            rate = LINES / wall
            report.append(f"| {name} | {rate:,.0f} | {size / wall / 1e6:.1f} | {rate / kcat_rate:.2f} | "
                          f"{cpu / LINES * 1e6:.2f} | {rss / 1024:.0f} |")

    for kcat_json, queue in (("kcat-json", "its default queue"), ("kcat-json-bounded", "cdrship's queue bound")):
        if "json" in results and kcat_json in results:
            mean = {name: LINES / (sum(r[0] for r in results[name]) / ROUNDS) for name in ("json", kcat_json)}
            report += ["", f"JSON: cdrship {mean['json']:,.0f} lines/s, kcat shipping the same JSON with "
                           f"{queue} {mean[kcat_json]:,.0f}: **{mean['json'] / mean[kcat_json]:.2f}x** "
                           "(means of the rounds)."]

    if MEMLINES and broker is not None:
        big = os.path.join(work, "big.csv")
        generate(big, MEMLINES)

        def outage():
            time.sleep(2)
            broker.stdin.write("down\n")
            broker.stdin.flush()
            time.sleep(OUTAGE)
            broker.stdin.write("up\n")
            broker.stdin.flush()

        threading.Thread(target=outage, daemon=True).start()
        with open(big, "rb") as f:
            wall, cpu, rss = Run(work, base + ["-q"], stdin=f).finish()
        report += ["", f"Memory probe: {MEMLINES:,} raw lines from stdin, broker down for {OUTAGE:.0f} s "
                       f"from second 2: all delivered in {wall:.1f} s, **peak RSS {rss / 1024:.0f} MiB**."]
    if only:
        print("\n".join(report))
    else:
        record(report)
    if broker is not None:
        broker.stdin.close()
        broker.wait()


if __name__ == "__main__":
    main()
