#!/bin/sh
# Two test hosts inside UML: network namespaces `ue` and `pcscf` joined by a veth pair.
#   uml/netns.sh up     create them (idempotent: removes old ones first)
#   uml/netns.sh down   remove them
# Addresses (override with env): UE 10.45.0.2/24 + fd00::2/64 on veth-ue,
# P-CSCF 10.45.0.1/24 + fd00::1/64 on veth-pcscf (IPv6 only if the ipv6 module is
# loaded; without DAD, so usable at once).
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
    # Batched: every `ip` start costs most of a second inside UML.
    ip -batch - <<EOT
netns add $UE
netns add $PC
link add veth-ue type veth peer name veth-pcscf
link set veth-ue netns $UE
link set veth-pcscf netns $PC
EOT
    v6=0
    [ -d /proc/sys/net/ipv6 ] && v6=1
    {
        echo "link set lo up"
        echo "addr add $UE4/24 dev veth-ue"
        [ $v6 = 1 ] && echo "addr add $UE6/64 dev veth-ue nodad"
        echo "link set veth-ue up"
    } | ip -n "$UE" -batch -
    {
        echo "link set lo up"
        echo "addr add $PC4/24 dev veth-pcscf"
        [ $v6 = 1 ] && echo "addr add $PC6/64 dev veth-pcscf nodad"
        echo "link set veth-pcscf up"
    } | ip -n "$PC" -batch -
    # Wait until the UE end reports carrier (veth is usually up at once).
    i=0
    until ip -n "$UE" link show veth-ue | grep -q LOWER_UP; do
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
