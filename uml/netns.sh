#!/bin/sh
# Two test hosts inside UML: network namespaces `ue` and `pcscf` joined by a veth pair.
#   uml/netns.sh up     create them (idempotent: removes old ones first)
#   uml/netns.sh down   remove them
# Addresses (override with env): UE 10.45.0.2/24 + fd00::2/64 on veth-ue,
# P-CSCF 10.45.0.1/24 + fd00::1/64 on veth-pcscf. IPv6 without DAD, so usable at once.
# Names can be changed with UML_NS_UE / UML_NS_PCSCF.
set -e
UE=${UML_NS_UE:-ue}
PC=${UML_NS_PCSCF:-pcscf}
UE4=${UML_UE_V4:-10.45.0.2}
PC4=${UML_PCSCF_V4:-10.45.0.1}
UE6=${UML_UE_V6:-fd00::2}
PC6=${UML_PCSCF_V6:-fd00::1}

down() {
    ip netns del "$UE" 2>/dev/null || true
    ip netns del "$PC" 2>/dev/null || true
}

up() {
    down
    ip netns add "$UE"
    ip netns add "$PC"
    ip link add veth-ue type veth peer name veth-pcscf
    ip link set veth-ue netns "$UE"
    ip link set veth-pcscf netns "$PC"
    for ns in "$UE" "$PC"; do
        ip -n "$ns" link set lo up
        # IPv6 is a module here; the sysctls exist only once it is loaded.
        ip netns exec "$ns" sh -c 'echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad' 2>/dev/null || true
    done
    ip -n "$UE" addr add "$UE4/24" dev veth-ue
    ip -n "$PC" addr add "$PC4/24" dev veth-pcscf
    if [ -d /proc/sys/net/ipv6 ]; then
        ip -n "$UE" addr add "$UE6/64" dev veth-ue nodad
        ip -n "$PC" addr add "$PC6/64" dev veth-pcscf nodad
    fi
    ip -n "$UE" link set veth-ue up
    ip -n "$PC" link set veth-pcscf up
    # Wait until both ends report carrier (veth is usually up at once).
    i=0
    until ip -n "$UE" link show veth-ue | grep -q LOWER_UP && \
          ip -n "$PC" link show veth-pcscf | grep -q LOWER_UP; do
        i=$((i + 1))
        [ $i -lt 50 ] || { echo "netns.sh: veth link did not come up" >&2; exit 1; }
        sleep 0.1
    done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
