#!/usr/bin/env python3
"""What an idle shipper costs a PBX host: CPU time and wake-ups per minute.

Starts, each on its own fresh mock broker (examples/mock_broker.rs):
  cdrship --file    following an empty file, progress saved
  cdrship --listen  a TCP server nobody connects to
  rsyslog           imfile (inotify) + omkafka on an empty file, when
                    rsyslogd and omkafka are installed (rsyslog-kafka)
The file shippers get one line first (omkafka connects to the broker only
for its first message; cdrship connects at start). After a 10 s warm-up,
samples over SECONDS: CPU
(utime + stime of every thread, /proc/PID/stat) and context switches
(voluntary + involuntary, /proc/PID/task/*/status): every wake-up of a
thread is a switch in and out, so switches per minute count wake-ups.

usage: bench/idle.py [SECONDS]   (default 600)
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import latency  # noqa: E402  (its rsyslog setup and paths)

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 600
TICKS = os.sysconf("SC_CLK_TCK")


def sample(pid):
    """CPU seconds, context switches and threads of `pid` now."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    switches = 0
    tasks = glob.glob(f"/proc/{pid}/task/*/status")
    for status in tasks:
        for line in open(status):
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                switches += int(line.split()[1])
    return cpu, switches, len(tasks)


def start(name, tmp, brokers):
    path = os.path.join(tmp, "Master.csv")
    open(path, "w").close()
    if name == "rsyslog imfile+omkafka":
        proc = latency.rsyslog(tmp, path, brokers)[0]
    else:
        args = [latency.binary, "-q", "-b", brokers, "-t", "latency"]
        if name == "cdrship --file":
            args += ["--file", path, "--state-dir", os.path.join(tmp, "state")]
        else:
            args += ["--listen", "127.0.0.1:0"]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    time.sleep(1)
    with open(path, "a") as f:
        f.write('"","100","200","warmup",0\n')
    return proc


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "cdrship",
                    "--example", "mock_broker"], cwd=latency.ROOT, check=True)
    names = ["cdrship --file", "cdrship --listen"]
    if shutil.which("rsyslogd") and os.path.exists(latency.OMKAFKA):
        names.append("rsyslog imfile+omkafka")
    else:
        print("rsyslog not measured: install rsyslog-kafka", file=sys.stderr)
    runs = []
    for name in names:
        tmp = tempfile.mkdtemp()
        broker = subprocess.Popen([latency.MOCK, "latency", "1"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        brokers = broker.stdout.readline().strip()
        runs.append((name, broker, start(name, tmp, brokers)))
    time.sleep(10)
    before = {name: sample(proc.pid) for name, _, proc in runs}
    time.sleep(SECONDS)
    after = {name: sample(proc.pid) for name, _, proc in runs}
    minutes = SECONDS / 60
    print(f"Idle for {SECONDS:.0f} s after a 10 s warm-up, all at once, each on its own mock broker.\n")
    print("| shipper | threads | CPU ms per minute | wake-ups per minute |")
    print("|---|--:|--:|--:|")
    for name, broker, proc in runs:
        (cpu0, sw0, _), (cpu1, sw1, threads) = before[name], after[name]
        print(f"| {name} | {threads} | {(cpu1 - cpu0) * 1000 / minutes:.1f} | "
              f"{(sw1 - sw0) / minutes:,.0f} |")
        proc.terminate()
        proc.wait()
        broker.stdin.close()
        broker.wait()


if __name__ == "__main__":
    main()
