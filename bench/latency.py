#!/usr/bin/env python3
"""Append -> acknowledged and append -> visible latency on a quiet file,
cdrship and (when installed) rsyslog imfile+omkafka in the same run.

Appends one CDR line every INTERVAL seconds to a followed file (open,
append, close: as cdr_csv does), and writes one to cdrship's stdin (a pipe
kept open) and over one idle TCP connection to `cdrship --listen`, and
times until
  acknowledged: cdrship's --echo prints it (its delivery callback, after
                the broker acknowledged it); rsyslog has no such signal;
  visible:      a consumer of the topic (kcat -C, fetch.wait.max.ms=1)
                prints it.
Each shipper gets a fresh librdkafka mock broker in its own process
(examples/mock_broker.rs) and ships with acks=all and idempotence.
rsyslog runs when rsyslogd and its omkafka module are installed (Debian
package rsyslog-kafka).

usage: bench/latency.py [SECONDS] [INTERVAL]   (defaults 60, 0.2; per shipper)
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
binary = os.environ.get("CDRSHIP", os.path.join(ROOT, "target/release/cdrship"))
MOCK = os.path.join(ROOT, "target/release/examples/mock_broker")
OMKAFKA = "/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so"

RSYSLOG_CONF = """
global(workDirectory="{tmp}")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="raw" type="string" string="%msg%")
input(type="imfile" File="{path}" Tag="cdr" ruleset="kafka")
ruleset(name="kafka") {{
  action(type="omkafka" broker=["{brokers}"] topic="latency" template="raw"
         confParam=["acks=all", "enable.idempotence=true", "linger.ms=5"])
}}
"""


def pick(samples, q):
    return samples[min(len(samples) - 1, int(q * len(samples)))]


def summary(samples):
    samples = sorted(samples)
    return (f"{len(samples)} | {pick(samples, 0.5):.1f} | {pick(samples, 0.99):.1f} | "
            f"{samples[-1]:.1f}")


def measure(name, start_shipper):
    """Lines appended to a fresh file until `seconds` pass; returns the
    acknowledged samples (None if the shipper has no such signal) and the
    visible ones."""
    with tempfile.TemporaryDirectory() as tmp:
        broker = subprocess.Popen([MOCK, "latency", "1"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        brokers = broker.stdout.readline().strip()
        path = os.path.join(tmp, "Master.csv")
        open(path, "w").close()
        consumer = subprocess.Popen(
            ["kcat", "-C", "-q", "-u", "-b", brokers, "-t", "latency", "-o", "beginning",
             "-f", "%s\n", "-X", "fetch.wait.max.ms=1", "-X", "fetch.error.backoff.ms=1"],
            stdout=subprocess.PIPE)
        shipper, echo, write = start_shipper(tmp, path, brokers)
        # Warm-up line: connections, topic metadata and the consumer's
        # assignment are not latency.
        write('"","100","200","warmup",0\n')
        if echo:
            shipper.stdout.readline()
        consumer.stdout.readline()
        acked, visible = [], []
        end = time.monotonic() + seconds
        n = 0
        while time.monotonic() < end:
            n += 1
            line = f'"","100","200","from-internal",{n}\n'
            start = time.monotonic()
            write(line)
            if echo:
                assert shipper.stdout.readline().decode() == line
                acked.append((time.monotonic() - start) * 1000)
            seen = consumer.stdout.readline().decode()
            visible.append((time.monotonic() - start) * 1000)
            assert seen == line, (name, seen, line)
            time.sleep(interval)
        for proc in (shipper, consumer):
            proc.terminate()
            proc.wait()
        broker.stdin.close()
        broker.wait()
        return (acked if echo else None), visible


def append(path):
    """Appending to `path` as cdr_csv does: open, append, close."""
    def write(line):
        with open(path, "a") as f:
            f.write(line)
    return write


def cdrship(tmp, path, brokers):
    args = [binary, "-q", "-b", brokers, "-t", "latency", "--file", path,
            "--state-dir", os.path.join(tmp, "state"), "--echo"]
    return subprocess.Popen(args, stdout=subprocess.PIPE), True, append(path)


def cdrship_stdin(tmp, path, brokers):
    """A pipe kept open, one line written at a time."""
    args = [binary, "-q", "-b", brokers, "-t", "latency", "--echo"]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def write(line):
        proc.stdin.write(line.encode())
        proc.stdin.flush()
    return proc, True, write


def cdrship_tcp(tmp, path, brokers):
    """One idle connection kept open, as a PBX's."""
    port_file = os.path.join(tmp, "port")
    args = [binary, "-b", brokers, "-t", "latency", "--echo", "--listen", "127.0.0.1:0"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(port_file, "w"))
    deadline = time.monotonic() + 30
    while "listening on " not in open(port_file).read():
        if time.monotonic() > deadline:
            sys.exit(f"cdrship --listen never listened: {open(port_file).read()}")
        time.sleep(0.01)
    addr = open(port_file).read().split("listening on ", 1)[1].split()[0]
    host, port = addr.rsplit(":", 1)
    conn = socket.create_connection((host, int(port)))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return proc, True, lambda line: conn.sendall(line.encode())


def rsyslog(tmp, path, brokers):
    conf = os.path.join(tmp, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(RSYSLOG_CONF.format(tmp=tmp, path=path, brokers=brokers))
    args = ["rsyslogd", "-n", "-f", conf, "-i", os.path.join(tmp, "rsyslog.pid")]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL), False, append(path)


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "cdrship",
                    "--example", "mock_broker"], cwd=ROOT, check=True)
    shippers = [("cdrship", cdrship), ("cdrship stdin", cdrship_stdin),
                ("cdrship --listen", cdrship_tcp)]
    if shutil.which("rsyslogd") and os.path.exists(OMKAFKA):
        shippers.append(("rsyslog imfile+omkafka", rsyslog))
    else:
        print("rsyslog not measured: install rsyslog-kafka", file=sys.stderr)
    print(f"One line per {interval * 1000:.0f} ms for {seconds:.0f} s per shipper; ms.\n")
    print("| shipper | measure | lines | p50 | p99 | max |")
    print("|---|---|--:|--:|--:|--:|")
    for name, start in shippers:
        acked, visible = measure(name, start)
        if acked is not None:
            print(f"| {name} | acknowledged | {summary(acked)} |")
        print(f"| {name} | visible | {summary(visible)} |")


if __name__ == "__main__":
    main()
