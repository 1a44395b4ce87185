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
Where perf is installed, `perf stat -e context-switches,task-clock` over
the same window counts them again, threads that end meanwhile included.
`cdrship --listen --spool-dir` is the shipped cdrship-listen.service.

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
    """CPU seconds, and context switches by thread id, of `pid` now."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    switches = {}
    for status in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            lines = open(status).readlines()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        tid = status.split("/")[4]
        switches[tid] = sum(int(line.split()[1]) for line in lines
                            if line.startswith(("voluntary_ctxt_switches",
                                                "nonvoluntary_ctxt_switches")))
    return cpu, switches


def woken(before, after):
    """Switches between two samples: a thread that ended meanwhile (a
    blocking-pool thread let go after 10 s idle) is not counted after its
    last sample; one that started counts from 0."""
    return sum(n - before.get(tid, 0) for tid, n in after.items())


def perf_stat(pid):
    """`perf stat` of the software events over the run (the threads alive
    when it attaches, also after they end), when perf is installed."""
    if not shutil.which("perf"):
        return None
    return subprocess.Popen(["perf", "stat", "-x,", "-e", "context-switches,task-clock",
                             "-p", str(pid), "--", "sleep", str(SECONDS)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_counts(proc):
    """(context switches, task-clock ms) from a finished `perf stat -x,`."""
    if proc is None:
        return None
    counts = {}
    for line in proc.communicate()[1].splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].replace(".", "").isdigit():
            counts[fields[2]] = float(fields[0])
    if "context-switches" not in counts:
        return None
    return counts["context-switches"], counts.get("task-clock", 0.0)


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
        if name.endswith("--spool-dir"):  # as systemd/cdrship-listen.service runs it
            args += ["--spool-dir", os.path.join(tmp, "spool")]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    time.sleep(1)
    with open(path, "a") as f:
        f.write('"","100","200","warmup",0\n')
    return proc


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "cdrship",
                    "--example", "mock_broker"], cwd=latency.ROOT, check=True)
    names = ["cdrship --file", "cdrship --listen", "cdrship --listen --spool-dir"]
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
    perfs = {name: perf_stat(proc.pid) for name, _, proc in runs}
    time.sleep(SECONDS)
    after = {name: sample(proc.pid) for name, _, proc in runs}
    minutes = SECONDS / 60
    print(f"Idle for {SECONDS:.0f} s after a 10 s warm-up, all at once, each on its own mock broker.\n")
    print("| shipper | threads | CPU ms per minute | wake-ups per minute "
          "| perf: context switches per minute | perf: task-clock ms per minute |")
    print("|---|--:|--:|--:|--:|--:|")
    for name, broker, proc in runs:
        (cpu0, sw0), (cpu1, sw1) = before[name], after[name]
        perf = perf_counts(perfs[name])
        perf_cells = (f"{perf[0] / minutes:,.0f} | {perf[1] / minutes:.1f}"
                      if perf else "n/a | n/a")
        print(f"| {name} | {len(sw1)} | {(cpu1 - cpu0) * 1000 / minutes:.1f} | "
              f"{woken(sw0, sw1) / minutes:,.0f} | {perf_cells} |")
        proc.terminate()
        proc.wait()
        broker.stdin.close()
        broker.wait()


if __name__ == "__main__":
    main()
