#!/usr/bin/env bash
# Check a built cdrship .deb the way an admin meets it: its contents,
# lintian, then (as root) install, use, remove and purge it.
#   packaging/check.sh target/debian/cdrship_0.1.0_amd64.deb
# Changes the machine it runs on (installs and purges the package); CI
# runs it on a throw-away machine.
set -euo pipefail

deb=${1:?usage: $0 PACKAGE.deb}
[ "$(id -u)" -eq 0 ] || { echo "$0: installing needs root" >&2; exit 2; }
fail() { echo "check: $*" >&2; exit 1; }

echo "== contents"
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
for path in \
    ./usr/bin/cdrship \
    ./usr/share/man/man1/cdrship.1.gz \
    ./usr/share/bash-completion/completions/cdrship \
    ./usr/share/zsh/vendor-completions/_cdrship \
    ./usr/share/fish/vendor_completions.d/cdrship.fish \
    ./etc/default/cdrship \
    ./usr/lib/systemd/system/cdrship-avaya.service \
    ./usr/lib/systemd/system/cdrship-avaya.socket \
    ./usr/lib/systemd/system/cdrship-listen.service \
    ./usr/lib/systemd/system/cdrship-file@.service \
    ./usr/share/doc/cdrship/copyright \
    ./usr/share/doc/cdrship/changelog.gz \
    ./usr/share/doc/cdrship/examples/Master.csv \
    ./usr/share/doc/cdrship/examples/clickhouse.sql \
    ./usr/share/doc/cdrship/examples/xinetd/cdrship-avaya \
    ./usr/share/doc/cdrship/examples/xinetd/cdrship-asterisk; do
    grep -qxF "$path" <<<"$contents" || fail "$path missing from $deb"
done
dpkg-deb --info "$deb" conffiles | grep -qx /etc/default/cdrship ||
    fail "/etc/default/cdrship is not a conffile"
depends=$(dpkg-deb --field "$deb" Depends)
echo "Depends: $depends"
# Debian's TLS, SASL, zstd and curl libraries, so their security updates
# reach cdrship (computed by dpkg-shlibdeps from what the binary links).
for lib in libssl3 libsasl2-2 libzstd1 libcurl4; do
    grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
echo "size: $(du -k "$deb" | cut -f1) KiB ($deb)"

echo "== lintian"
# Errors and warnings fail; overrides (packaging/lintian-overrides) say why
# each one kept is fine.
lintian --fail-on error,warning --show-overrides "$deb"

echo "== install (twice: the second is the upgrade path)"
dpkg -i "$deb"
dpkg -i "$deb"
getent passwd cdrship >/dev/null || fail "user cdrship (for the xinetd examples) missing"
version=$(/usr/bin/cdrship --version)
echo "$version"
[[ "$version" == "cdrship $(dpkg-deb --field "$deb" Version) (librdkafka "* ]] ||
    fail "--version does not match the package"
for feature in ssl sasl_gssapi sasl_scram sasl_oauthbearer zstd lz4 snappy gzip; do
    [[ "$version" == *"$feature"* ]] || fail "the installed binary lacks $feature: $version"
done
man -l /usr/share/man/man1/cdrship.1.gz | grep -q -- '--spool-dir' ||
    fail "the installed man page does not render"
bash -c 'source /usr/share/bash-completion/completions/cdrship && complete -p cdrship' ||
    fail "the bash completion does not load"
# Installed units, with the installed binary and man page.
systemd-analyze verify --man=yes \
    /usr/lib/systemd/system/cdrship-avaya.socket \
    /usr/lib/systemd/system/cdrship-avaya.service \
    /usr/lib/systemd/system/cdrship-listen.service \
    /usr/lib/systemd/system/cdrship-file@asterisk.service
if [ -d /run/systemd/system ]; then
    for unit in cdrship-avaya.socket cdrship-avaya.service cdrship-listen.service; do
        ! systemctl is-enabled --quiet "$unit" || fail "$unit was enabled by installing"
        ! systemctl is-active --quiet "$unit" || fail "$unit was started by installing"
    done
fi

echo "== remove keeps settings and state; purge deletes them"
echo "CDRSHIP_BROKERS=kafka-edited:9092" >>/etc/default/cdrship
mkdir -p /var/lib/cdrship/spool-avaya
touch /var/lib/cdrship/spool-avaya/00000000000000000000.seg
dpkg -r cdrship
[ ! -e /usr/bin/cdrship ] || fail "/usr/bin/cdrship left after remove"
grep -q kafka-edited /etc/default/cdrship || fail "remove lost the edited conffile"
[ -e /var/lib/cdrship/spool-avaya/00000000000000000000.seg ] || fail "remove deleted the spool"
dpkg -P cdrship
[ ! -e /etc/default/cdrship ] || fail "purge left /etc/default/cdrship"
[ ! -e /var/lib/cdrship ] || fail "purge left /var/lib/cdrship"
echo "check: $deb ok"
