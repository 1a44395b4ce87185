#!/usr/bin/env python3
"""Append->acknowledged latency on a quiet file.

Appends one CDR line every INTERVAL seconds to a followed file and times
until cdrship's --echo prints it, which happens in the delivery callback,
after the broker acknowledged it. Broker: librdkafka's mock cluster inside
cdrship (-X test.mock.num.brokers=1), or KAFKA_BROKERS.

usage: bench/latency.py [SECONDS] [INTERVAL]   (defaults 60, 0.2)
"""
import os
import subprocess
import sys
import tempfile
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
binary = os.environ.get("CDRSHIP", "target/release/cdrship")
brokers = os.environ.get("KAFKA_BROKERS")

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "Master.csv")
    open(path, "w").close()
    args = [binary, "-q", "-t", "latency", "--file", path, "--state-dir", os.path.join(tmp, "state"), "--echo"]
    args += ["-b", brokers] if brokers else ["-X", "test.mock.num.brokers=1"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    # Warm-up line: connection set-up and topic creation are not latency.
    with open(path, "a") as f:
        f.write('"","100","200","warmup",0\n')
    proc.stdout.readline()
    samples = []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        line = f'"","100","200","from-internal",{n}\n'
        start = time.monotonic()
        with open(path, "a") as f:  # open, append, close: as cdr_csv does
            f.write(line)
        echoed = proc.stdout.readline().decode()
        samples.append((time.monotonic() - start) * 1000)
        assert echoed == line, (echoed, line)
        time.sleep(interval)
    proc.terminate()
    proc.wait()
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"{len(samples)} lines, one per {interval * 1000:.0f} ms: "
          f"p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {samples[-1]:.1f} ms")
