#!/bin/sh
# First start of a container: make /data a node's data dir, listening on all
# of the container's addresses (the ports are published, or reached by
# service name, from outside it). Later starts find config.toml and leave
# the data dir as it is. Then exec the command (powernode run ...): the
# node replaces the shell, and docker's SIGTERM reaches it directly.
#
#   POWERNODE_GENESIS  the chain's genesis file (required on the first start,
#                      unless POWERNODE_DEV=1 makes a dev chain of its own)
#   POWERNODE_PEERS    comma-separated host:port peers; P2P is on when set
#   POWERNODE_MINE     1: mine (the same as `run --mine`)
set -eu
DATA=${POWERNODE_DATA:-/data}  # another folder only for tests of this script
if [ ! -f "$DATA/config.toml" ]; then
    # init refuses a non-empty dir (a mounted volume may hold lost+found):
    # build the data dir elsewhere and copy it in.
    build=$(mktemp -d)
    if [ -n "${POWERNODE_GENESIS:-}" ]; then
        # Wait for a genesis another container writes (the compose testnet).
        i=0
        while [ ! -s "$POWERNODE_GENESIS" ] && [ "$i" -lt 60 ]; do i=$((i + 1)); sleep 1; done
        powernode init --datadir "$build/d" --genesis "$POWERNODE_GENESIS"
    elif [ "${POWERNODE_DEV:-0}" = 1 ]; then
        powernode init --datadir "$build/d" --dev
    else
        rm -rf "$build"
        echo "powernode-entrypoint: error: $DATA is not a data dir; set POWERNODE_GENESIS=FILE (or POWERNODE_DEV=1)" >&2
        exit 1
    fi
    cp -a "$build/d/." "$DATA/"
    rm -rf "$build"
    # Inside a container the RPC, P2P and metrics listeners bind every
    # address: 127.0.0.1 would be the container's own loopback only.
    sed -i 's/^host = "127.0.0.1"/host = "0.0.0.0"/' "$DATA/config.toml"
    if [ -n "${POWERNODE_PEERS:-}" ]; then
        peers=$(printf '%s' "$POWERNODE_PEERS" | sed 's/[^,][^,]*/"&"/g; s/,/, /g')
        sed -i "/^\[p2p\]/,/^\[/ s/^enabled = false/enabled = true/" "$DATA/config.toml"
        sed -i "/^\[p2p\]/,/^\[/ s/^peers = \[\]/peers = [$peers]/" "$DATA/config.toml"
    fi
fi
if [ "${POWERNODE_MINE:-0}" = 1 ]; then
    set -- "$@" --mine
fi
exec "$@"
