#!/usr/bin/env bash
# Runs one command inside user-mode Linux (a real 6.1 kernel with ESP/XFRM) and
# propagates its stdout, stderr and exit status. See uml/README.md.
#
#   uml/run.sh [--timeout SECS] [--mem SIZE] [--modules "m1 m2"] [--only-modules "m1 m2"] [--] <command> [args...]
#
# --modules adds to the default module list, --only-modules replaces it.
#
# The UML guest uses the host's / as its root (hostfs), so the command, its binaries
# and files are the host's. Exit status: the command's own; 124 on timeout; 125 when
# UML is missing or did not boot / did not report a result.
# Environment: UML_KERNEL (default /usr/bin/linux.uml), UML_MODULES_DIR (default
# /usr/lib/uml/modules), UML_PASS_ENV (extra variable names to pass in; RUST_LOG,
# RUST_BACKTRACE and every IMS_* / UML_TEST_* variable are passed by default),
# UML_KEEP=1 keeps the job directory for debugging.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=240
MEM=512M
DEFAULT_MODULES="xfrm_algo xfrm_user af_key esp4 ipv6 esp6 authenc echainiv seqiv hmac md5 sha1_generic \
cbc aes_generic des_generic crypto_null sha256_generic sha512_generic jitterentropy_rng drbg veth"
MODULES=$DEFAULT_MODULES

die() { echo "uml/run.sh: $*" >&2; exit 125; }

while [ $# -gt 0 ]; do
    case "$1" in
        --timeout) TIMEOUT=$2; shift 2 ;;
        --mem) MEM=$2; shift 2 ;;
        --modules) MODULES="$DEFAULT_MODULES $2"; shift 2 ;;
        --only-modules) MODULES=$2; shift 2 ;;
        --) shift; break ;;
        -*) die "unknown option $1" ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || die "usage: uml/run.sh [--timeout SECS] [--mem SIZE] [--modules LIST] [--] <command> [args...]"

KERNEL=${UML_KERNEL:-/usr/bin/linux.uml}
MODDIR=${UML_MODULES_DIR:-/usr/lib/uml/modules}
[ -x "$KERNEL" ] || die "user-mode Linux kernel $KERNEL not found: install the Debian package user-mode-linux (scripts/install-test-deps.sh)"
command -v modprobe >/dev/null || die "modprobe not found: install the Debian package kmod"
command -v ip >/dev/null || die "ip not found: install the Debian package iproute2"
[ -d "$MODDIR" ] || die "UML modules directory $MODDIR not found (package user-mode-linux)"
[ -x "$HERE/init.sh" ] || die "$HERE/init.sh missing or not executable"

JOB=$(mktemp -d "${TMPDIR:-/tmp}/uml-job.XXXXXX") || die "cannot create a job directory"
cleanup() { [ "${UML_KEEP:-0}" = 1 ] && echo "uml/run.sh: job kept in $JOB" >&2 || rm -rf "$JOB"; }
trap cleanup EXIT

# The command, quoted for sh.
{
    printf 'exec'
    for a in "$@"; do printf " '%s'" "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"; done
    printf '\n'
} > "$JOB/cmd"
pwd > "$JOB/cwd"
echo "$MODULES" > "$JOB/modules"
{
    for v in RUST_LOG RUST_BACKTRACE ${UML_PASS_ENV:-} $(compgen -e | grep -E '^(IMS_|UML_TEST_)'); do
        if [ -n "${!v+x}" ]; then
            printf "export %s='%s'\n" "$v" "$(printf '%s' "${!v}" | sed "s/'/'\\\\''/g")"
        fi
    done
} > "$JOB/env"

# UML keeps its guest memory in a file under TMPDIR; /dev/shm is the usual choice.
# It must have room for the whole guest memory (containers often have a 64 MB /dev/shm).
mem_kb() { case "$1" in *G) echo $(( ${1%G} * 1048576 ));; *M) echo $(( ${1%M} * 1024 ));; *K) echo "${1%K}";; *) echo $(( $1 / 1024 ));; esac; }
room_kb() { df -Pk "$1" 2>/dev/null | awk 'NR==2 {print $4}'; }
need_kb=$(( $(mem_kb "$MEM") + 65536 ))
UML_TMP=${UML_TMPDIR:-}
if [ -z "$UML_TMP" ]; then
    for d in /dev/shm "${TMPDIR:-/tmp}" /tmp /var/tmp; do
        if [ -d "$d" ] && [ -w "$d" ] && [ "$(room_kb "$d" || echo 0)" -ge "$need_kb" ] 2>/dev/null; then
            UML_TMP=$d
            break
        fi
    done
    [ -n "$UML_TMP" ] || die "no temporary directory with $need_kb KB free for UML's memory (set UML_TMPDIR)"
fi

start=$(date +%s)
TMPDIR=$UML_TMP timeout --kill-after=10 "$TIMEOUT" "$KERNEL" \
    mem="$MEM" root=/dev/root rootfstype=hostfs rootflags=/ rw \
    init="$HERE/init.sh" con=null con0=fd:0,fd:1 \
    UML_JOB="$JOB" </dev/null >"$JOB/console.log" 2>&1
uml_rc=$?
elapsed=$(( $(date +%s) - start ))

[ -f "$JOB/stdout" ] && cat "$JOB/stdout"
[ -f "$JOB/stderr" ] && cat "$JOB/stderr" >&2
if grep -q FAILED "$JOB/modules.log" 2>/dev/null; then
    echo "uml/run.sh: some modules did not load:" >&2
    cat "$JOB/modules.log" >&2
fi
if [ -f "$JOB/rc" ]; then
    rc=$(cat "$JOB/rc")
    echo "uml/run.sh: command exited with $rc after ${elapsed}s in UML" >&2
    exit "$rc"
fi
if [ "$uml_rc" = 124 ] || [ "$uml_rc" = 137 ]; then
    echo "uml/run.sh: TIMEOUT after ${TIMEOUT}s (command did not finish in UML)" >&2
    tail -n 30 "$JOB/console.log" >&2
    exit 124
fi
if [ ! -f "$JOB/booted" ]; then
    echo "uml/run.sh: UML did not boot (kernel exit $uml_rc); last console lines:" >&2
else
    echo "uml/run.sh: UML ended (exit $uml_rc) without the command's result; last console lines:" >&2
fi
tail -n 30 "$JOB/console.log" >&2
exit 125
