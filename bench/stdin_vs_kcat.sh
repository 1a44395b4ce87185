#!/usr/bin/env bash
# Raw lines from stdin to Kafka: cdrship next to `kcat -P`, same mock
# broker, same producer guarantees (acks=all, idempotence), same run,
# alternating rounds. Usage: bench/stdin_vs_kcat.sh [LINES] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
rounds=${2:-3}
work=$(mktemp -d)
trap 'exec 3>&-; rm -rf "$work"' EXIT

cargo build --release --quiet --bin cdrship --example mock_broker
command -v kcat >/dev/null || { echo "kcat missing: apt-get install kcat" >&2; exit 1; }

# Realistic Master.csv lines: the sample file repeated, uniqueid made unique.
python3 - "$lines" > "$work/cdr.csv" <<'PY'
import sys
n = int(sys.argv[1])
sample = open("examples/Master.csv", encoding="utf-8").read().splitlines()
out = sys.stdout
for i in range(n):
    line = sample[i % len(sample)].rstrip("\r")
    out.write(line.replace("\"171", f"\"{i}.171", 1) + "\n")
PY
bytes=$(stat -c %s "$work/cdr.csv")

# Broker in its own process; it lives while fd 3 stays open.
exec 3> >(target/release/examples/mock_broker bench 4 > "$work/broker")
until [ -s "$work/broker" ]; do sleep 0.1; done
broker=$(cat "$work/broker")

measure() { # name command...
    local name=$1; shift
    /usr/bin/time -v -o "$work/time" "$@" < "$work/cdr.csv" > /dev/null 2> "$work/err" || {
        echo "$name failed:" >&2; cat "$work/err" >&2; exit 1; }
    local wall rss cpu
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/time")
    rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time")
    cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$work/time")
    awk -v n="$name" -v l="$lines" -v b="$bytes" -v w="$wall" -v r="$rss" -v c="$cpu" 'BEGIN {
        printf "| %-8s | %10.0f | %7.1f | %6.2f | %6.1f | %6.0f |\n", n, l/w, b/w/1048576, w, c, r/1024 }'
}

echo "$lines lines, $bytes bytes, broker $broker (librdkafka mock cluster, 4 partitions)"
echo "| tool     |    lines/s |    MB/s | wall s |  cpu s | RSS MiB |"
echo "|----------|-----------:|--------:|-------:|-------:|--------:|"
for round in $(seq "$rounds"); do
    measure kcat kcat -P -b "$broker" -t bench -X acks=all -X enable.idempotence=true -X linger.ms=5
    measure cdrship target/release/cdrship -q -b "$broker" -t bench
done
