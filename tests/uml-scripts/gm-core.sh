#!/bin/sh
# Inside user-mode Linux (see uml/README.md): brings up the two test hosts and the
# IMS core for the Gm IPsec end-to-end tests (tests/tests/gm_ipsec.rs).
#
#   tests/uml-scripts/gm-core.sh <dir> <bindir>
#
# <dir> holds hss.toml, scscf.toml, icscf.toml, pcscf.toml and hss.db (written and
# provisioned on the host by the test; copied to /run/gm, UML's private tmpfs);
# <bindir> holds the hss, scscf, icscf and pcscf
# binaries. Makes netns `ue` (10.45.0.2) and `pcscf` (10.45.0.1) with uml/netns.sh,
# starts the four roles in netns `pcscf` (all on 10.45.0.1: P-CSCF 5060, I-CSCF 5070,
# S-CSCF 5080, HSS 3868), logs to <dir>/<role>.log, pids in <dir>/<role>.pid, and waits
# until each listens. Exit status 0 when all four run; 1 with the log tail otherwise.
set -u
DIR=$1
BIN=$2
HERE=$(cd "$(dirname "$0")" && pwd)
UML=$HERE/../../uml

sh "$UML/netns.sh" up || { echo "gm-core: netns.sh up failed" >&2; exit 1; }

start() {
    name=$1
    shift
    ip netns exec pcscf "$@" >> "$DIR/$name.log" 2>&1 &
    echo $! > "$DIR/$name.pid"
}

# Waits until something listens on TCP port $2 in netns pcscf (role $1).
wait_port() {
    i=0
    while [ $i -lt 60 ]; do
        if ip netns exec pcscf ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN; then
            return 0
        fi
        if ! kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; then
            echo "gm-core: $1 exited; log tail:" >&2
            tail -n 30 "$DIR/$1.log" >&2
            exit 1
        fi
        i=$((i + 1))
        sleep 0.5
    done
    echo "gm-core: $1 does not listen on TCP $2 after 30 s; log tail:" >&2
    tail -n 30 "$DIR/$1.log" >&2
    exit 1
}

# Databases go to UML's private tmpfs (SQLite locking/WAL on hostfs is not trusted);
# the HSS database provisioned on the host is copied there.
mkdir -p /run/gm
cp "$DIR/hss.db" /run/gm/hss.db || { echo "gm-core: no provisioned $DIR/hss.db" >&2; exit 1; }
for f in "$DIR"/hss.db-wal "$DIR"/hss.db-shm; do [ -f "$f" ] && cp "$f" /run/gm/; done
start hss "$BIN/hss" --db "sqlite:///run/gm/hss.db" serve --config "$DIR/hss.toml"
wait_port hss 3868
start scscf "$BIN/scscf" --config "$DIR/scscf.toml"
start icscf "$BIN/icscf" --config "$DIR/icscf.toml"
wait_port scscf 5080
wait_port icscf 5070
start pcscf "$BIN/pcscf" --config "$DIR/pcscf.toml"
wait_port pcscf 5060
echo "gm-core: core up (hss scscf icscf pcscf in netns pcscf on 10.45.0.1)"
