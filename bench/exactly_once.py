#!/usr/bin/env python3
"""What --exactly-once costs at a start after an unclean stop.

For each WINDOW (lines whose messages are in Kafka past the saved
position, i.e. what a crash right after their acks and before the
checkpoint leaves), on a fresh librdkafka mock broker in its own process
(examples/mock_broker.rs, 4 partitions):

  1. cdrship --file (WINDOW lines) --exactly-once ships them; SIGTERM.
  2. The state is moved back to byte 0 with the read-back offsets at the
     partitions' starts and the clean flag off: the crash state.
  3. cdrship starts again: it waits no fence (0 s, one broker), reads the
     WINDOW messages back, re-reads the file and sends none of them.

Prints, per window: the read-back time cdrship logs, start -> every line
accounted for, and peak RSS of both runs. The largest window a crash can
leave is about the producer queue (queue.buffering.max.messages, 50,000)
plus the lines acknowledged since the last save; the mock keeps ~5 MB per
partition, so larger windows would be dropped by it before the read.

usage: bench/exactly_once.py [WINDOW...]   (default 10000 50000)
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (its helpers; its argv parsing is harmless here)

WINDOWS = [int(w) for w in sys.argv[1:]] or [10_000, 50_000]


def crash_state(state_dir):
    """Rewrite the one state in `state_dir` as an unclean stop at byte 0."""
    [name] = [n for n in os.listdir(state_dir) if n.endswith(".state.json")]
    path = os.path.join(state_dir, name)
    state = json.load(open(path))
    assert state["written"]["clean"], state
    state["offset"] = 0
    state["written"] = {"clean": False,
                        "from": [{"topic": "bench", "partition": p, "offset": 0} for p in range(4)]}
    json.dump(state, open(path, "w"))


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "cdrship",
                    "--example", "mock_broker"], cwd=compare.ROOT, check=True)
    print(compare.machine())
    print()
    print("| window (lines in Kafka past the saved position) | read-back ms | start -> all accounted s "
          "| peak RSS MiB, first run | peak RSS MiB, recovering run |")
    print("|--:|--:|--:|--:|--:|")
    for window in WINDOWS:
        work = tempfile.mkdtemp()
        data = os.path.join(work, "Master.csv")
        compare.generate(data, window)
        broker = subprocess.Popen([compare.MOCK, "bench", "4"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        brokers = broker.stdout.readline().strip()
        state = os.path.join(work, "state")
        args = [compare.CDRSHIP, "-b", brokers, "-t", "bench", "--file", data, "--state-dir", state,
                "--metrics", "127.0.0.1:0", "--exactly-once", "--exactly-once-fence", "0"]
        _, _, rss1 = compare.until_delivered(compare.Run(work, args), window)
        crash_state(state)
        second = compare.Run(work, args)
        wall, _, rss2 = compare.until_delivered(second, window)
        log = "".join(second.log)
        found = re.search(r"exactly once: (\d+) messages .* \(read back in (\d+) ms\)", log)
        if not found or int(found.group(1)) != window or \
                f"{window} of the delivered lines were in Kafka already" not in log:
            sys.exit(f"window {window}: the recovering run did not skip every line:\n{log}")
        print(f"| {window:,} | {int(found.group(2)):,} | {wall:.2f} | {rss1 / 1024:.0f} | {rss2 / 1024:.0f} |")
        broker.stdin.close()
        broker.wait()


if __name__ == "__main__":
    main()
