#!/bin/sh
# PID 1 inside user-mode Linux (see uml/README.md). Started by uml/run.sh with the
# host's / as hostfs root. Reads its job from $UML_JOB (a host directory, passed on the
# kernel command line), writes the command's stdout, stderr and exit status back there,
# then powers the UML kernel off. Never returns (PID 1 must not exit).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root

say() { echo "uml-init: $*"; }

poweroff_now() {
    sync
    echo 1 > /proc/sys/kernel/sysrq 2>/dev/null
    echo o > /proc/sysrq-trigger 2>/dev/null
    # The power-off runs asynchronously; wait for it. If it never comes, exiting
    # makes the kernel panic, which ends UML as well.
    sleep 10
    exit 0
}

mount -t proc proc /proc || say "mount /proc failed"
mount -t sysfs sysfs /sys || say "mount /sys failed"
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev 2>/dev/null
# A private /run: `ip netns add` bind-mounts files under /run/netns, which must not
# land on the host's /run through hostfs.
mount -t tmpfs tmpfs /run || say "mount /run failed"
mkdir -p /run/netns /dev/shm
mount -t tmpfs tmpfs /dev/shm 2>/dev/null

if [ -z "$UML_JOB" ] || [ ! -d "$UML_JOB" ]; then
    say "no job directory (UML_JOB='$UML_JOB')"
    poweroff_now
fi

KVER=$(uname -r)
# modprobe wants <root>/lib/modules/<version>; Debian's UML ships them elsewhere.
mkdir -p /run/uml-mods/lib/modules
ln -s "/usr/lib/uml/modules/$KVER" "/run/uml-mods/lib/modules/$KVER"
: > "$UML_JOB/modules.log"
for m in $(cat "$UML_JOB/modules"); do
    modprobe -d /run/uml-mods "$m" >> "$UML_JOB/modules.log" 2>&1 \
        || echo "FAILED $m" >> "$UML_JOB/modules.log"
done
ip link set lo up
# Every module the job needs is loaded above. Without this the kernel still calls
# /sbin/modprobe for each algorithm name on first use (request_module: "crypto-cbc(aes)",
# "crypto-authenc(...)", ...), and the host's modprobe cannot find UML's modules: each
# first XFRM state with a new algorithm pair then takes 1-3 s (measured), long enough to
# stall a P-CSCF installing SAs. An empty path makes request_module fail at once.
echo > /proc/sys/kernel/modprobe

cd "$(cat "$UML_JOB/cwd")" || cd /
. "$UML_JOB/env"
echo booted > "$UML_JOB/booted"
sh "$UML_JOB/cmd" > "$UML_JOB/stdout" 2> "$UML_JOB/stderr" < /dev/null
echo $? > "$UML_JOB/rc.tmp"
sync
mv "$UML_JOB/rc.tmp" "$UML_JOB/rc"
poweroff_now
