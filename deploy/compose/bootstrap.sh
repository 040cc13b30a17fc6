#!/bin/sh
# Make the evaluation consortium once, into the "consortium" volume (compose.yaml).
#
# Runs `mpc-ledger consortium init` (keys, genesis and configs for every member,
# all on this one host: evaluation only, never how a real consortium is made),
# then writes one compose.toml per member next to its party.toml: the same keys
# and genesis, but listening on all of the container's addresses and dialling
# its peers by their compose service names ([peers]), since the genesis
# endpoints (127.0.0.1:7001...) are only true on the host, where compose.yaml
# publishes each member's port on loopback.
#
# Idempotent: if the genesis exists, it only prints the chain id.
# Usage: bootstrap.sh [OUT]   (default: $CONSORTIUM_DIR, then /consortium)
set -eu

out=${1:-${CONSORTIUM_DIR:-/consortium}}
members="a b c dealer auditor"   # consortium init's order: parties, dealer, auditor
base_port=7001

if [ ! -f "$out/genesis.json" ]; then
    mpc-ledger consortium init --parties a,b,c --dealer --auditor \
        --out "$out" --host 127.0.0.1 --base-port "$base_port" --name compose-eval
fi

index=0
for member in $members; do
    port=$((base_port + index))
    metrics_port=$((base_port + 100 + index))
    config="$out/$member/compose.toml"
    {
        echo "# Written by deploy/compose/bootstrap.sh: member '$member' in compose."
        echo "[party]"
        echo "id = \"$member\""
        echo "genesis = \"../genesis.json\""
        echo "listen = \"0.0.0.0:$port\""
        echo "data_dir = \"/var/lib/mpc-ledger\""
        echo
        echo "[keys]"
        echo "signing_key = \"keys/signing.key\""
        echo "tls_key = \"keys/tls.key\""
        echo "tls_certificate = \"keys/tls.crt\""
        echo "tls_ca_key = \"keys/tls-ca.key\""
        echo
        echo "[metrics]"
        echo "listen = \"0.0.0.0:$metrics_port\""
        echo
        echo "[log]"
        echo "level = \"info\""
        echo
        echo "[peers]"
        peer_index=0
        for peer in $members; do
            if [ "$peer" != "$member" ]; then
                echo "$peer = \"$peer:$((base_port + peer_index))\""
            fi
            peer_index=$((peer_index + 1))
        done
    } > "$config.tmp"
    mv "$config.tmp" "$config"
    index=$((index + 1))
done

# The party containers run as uid 10001 (the image's user); keys stay 0600.
if [ "$(id -u)" = 0 ]; then
    chown -R 10001:10001 "$out"
fi
chain_id=$(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["chain_id"])' \
    "$out/genesis.json")
echo "consortium ready in $out, chain id $chain_id"
