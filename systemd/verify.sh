#!/usr/bin/env bash
# Check the units in this directory with `systemd-analyze verify`, using
# BINARY in place of /usr/bin/cdrship (verify insists that ExecStart= exists):
#   systemd/verify.sh target/debug/cdrship
# Exits non-zero if verify reports anything at all, warnings included.
# Then prints the `systemd-analyze security` exposure of each service
# (information only, never a failure). Needs no root and changes nothing.
set -euo pipefail
shopt -s nullglob

if [ "$#" -ne 1 ]; then
    echo "usage: $0 BINARY" >&2
    exit 2
fi
bin=$(realpath -e -- "$1") || { echo "$0: $1: not found" >&2; exit 2; }
[ -f "$bin" ] && [ -x "$bin" ] || { echo "$0: $bin: not an executable file" >&2; exit 2; }
case "$bin" in
    *[!A-Za-z0-9/._+-]*) echo "$0: $bin: path needs quoting in a unit file; use a plainer path" >&2; exit 2 ;;
esac
command -v systemd-analyze >/dev/null || { echo "$0: systemd-analyze not found" >&2; exit 2; }

src=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Documentation=man:cdrship(1) must resolve: use the page build.rs rendered
# next to BINARY (an installed package brings its own).
man=$(dirname "$bin")/assets/cdrship.1.gz
if [ -f "$man" ]; then
    mkdir -p "$tmp/man/man1"
    cp "$man" "$tmp/man/man1/"
    export MANPATH="$tmp/man:${MANPATH:-}"
fi

# The units as they will be installed, with the binary swapped in.
# EnvironmentFile= paths stay: verify does not read them.
for f in "$src"/*.service "$src"/*.socket; do
    text=$(<"$f")
    printf '%s\n' "${text//\/usr\/bin\/cdrship/"$bin"}" >"$tmp/${f##*/}"
done
if grep -l '/usr/bin/cdrship' "$tmp"/* >/dev/null; then
    echo "$0: /usr/bin/cdrship left in a copy" >&2
    exit 1
fi

# What to verify: every unit, templates through an example instance.
units=()
for f in "$tmp"/*.service "$tmp"/*.socket; do
    name=${f##*/}
    case "$name" in
        *@.service) units+=("${name%@.service}@asterisk.service") ;;
        *) units+=("$name") ;;
    esac
done

echo "systemd-analyze: $(systemd-analyze --version | head -n 1)"
echo "binary: $bin"

# Guard against a verify that reports nothing at all on this machine.
printf '[Service]\nExecStart=%s\nNoSuchSetting=1\n' "$bin" >"$tmp/canary.service"
if [ -z "$(systemd-analyze verify "$tmp/canary.service" 2>&1)" ]; then
    echo "$0: systemd-analyze verify missed a deliberate error; cannot check" >&2
    exit 1
fi
rm "$tmp/canary.service"

failed=0
for unit in "${units[@]}"; do
    if out=$(systemd-analyze verify --man=yes --recursive-errors=yes "$tmp/$unit" 2>&1) && [ -z "$out" ]; then
        echo "ok      $unit"
    else
        echo "FAILED  $unit"
        printf '%s\n' "$out" | sed "s|$tmp/||g; s|^|        |"
        failed=1
    fi
done

# Exposure scores: 0 is fully locked down, 10 is wide open.
if systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
    for unit in "${units[@]}"; do
        case "$unit" in *.service) ;; *) continue ;; esac
        score=$(systemd-analyze security --offline=yes --no-pager "$tmp/$unit" 2>&1 |
            sed -n 's/.*Overall exposure level for [^:]*: *//p')
        echo "exposure $unit: ${score:-unknown}"
    done
else
    echo "exposure: skipped (systemd-analyze security has no --offline before systemd 250)"
fi

if [ "$failed" -ne 0 ]; then
    echo "verify: findings above" >&2
    exit 1
fi
echo "verify: all ${#units[@]} units clean"
