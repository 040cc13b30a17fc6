"""The ledger as a part of the party daemon: store, node, gossip links, servicers."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import grpc

from mpc_ledger.identity.party import Party
from mpc_ledger.ledger.catchup import BlockFetcher
from mpc_ledger.ledger.links import GossipLinks
from mpc_ledger.ledger.network import ConsensusServicer, LedgerServicer, gossip_record
from mpc_ledger.ledger.node import LedgerNode, NodeOptions
from mpc_ledger.ledger.state import Rulebook
from mpc_ledger.ledger.store import SqliteBlockStore
from mpc_ledger.proto.v1 import (
    consensus_pb2,
    ledger_service_pb2,
    ledger_service_pb2_grpc,
    party_pb2,
)

if TYPE_CHECKING:
    from mpc_ledger.net.service import DaemonHost

__all__ = ["LedgerService"]

log = logging.getLogger(__name__)

STORE_FILE = "ledger.sqlite"


class LedgerService:
    """A `DaemonService`: the party's ledger node on the daemon's port.

    ``rules``: the record kinds the node accepts (`mpc_ledger.rulebook.RULEBOOK`).
    """

    def __init__(self, party: Party, rules: Rulebook, options: NodeOptions | None = None) -> None:
        self.party = party
        self._rules = rules
        self._options = options
        self.store = SqliteBlockStore(party.config.data_dir / STORE_FILE, party.genesis.chain_id)
        self.node: LedgerNode | None = None
        self.links: GossipLinks | None = None
        self._validator_ids: tuple[str, ...] = ()
        self._peer_ids: tuple[str, ...] = ()

    def register(self, server: grpc.Server) -> None:
        identity = self.party.identity
        self.node = LedgerNode(
            identity,
            self.store,
            self._rules,
            send=self._send_consensus,
            broadcast_record=self._broadcast_record,
            announce=self._announce,
            options=self._options,
        )
        ledger_service_pb2_grpc.add_LedgerServicer_to_server(LedgerServicer(self.node), server)
        ledger_service_pb2_grpc.add_ConsensusServicer_to_server(
            ConsensusServicer(self.party.genesis, self.node), server
        )

    def start(self, daemon: DaemonHost) -> None:
        assert self.node is not None, "register() runs before start()"
        peers = daemon.peers.members
        self._peer_ids = tuple(m.id for m in peers)
        self._validator_ids = tuple(m.id for m in peers if m.has_role("validator"))
        self.links = GossipLinks(self.party.identity, peers, self.party.config.peer_addresses)
        self._export_metrics(daemon)
        daemon.set_user_lookup(self.node.user_refusal)
        fetcher = BlockFetcher(daemon.peers, self.party.genesis, self.node)
        self.node.on_peer_ahead = fetcher.peer_ahead
        self.links.start()
        self.node.start()
        threading.Thread(target=fetcher.sync_on_start, name="ledger-sync", daemon=True).start()
        role = "validator" if self.node.core is not None else "follower"
        log.info("ledger %s at height %d (%s)", role, self.node.height, self.store.path)

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()
        if self.links is not None:
            self.links.stop()
        self.store.close()

    def _export_metrics(self, daemon: DaemonHost) -> None:
        node, metrics = self.node, daemon.metrics
        assert node is not None
        node.metrics = metrics
        metrics.gauge_from(metrics.ledger_height, lambda: node.height)
        metrics.gauge_from(metrics.ledger_records, lambda: node.tip().log_size)
        metrics.gauge_from(metrics.mempool_size, lambda: len(node.mempool))
        metrics.gauge_from(metrics.commit_waiters, lambda: node.waiters)
        metrics.gauge_from(
            metrics.peers_connected,
            lambda: sum(self.links.connected().values()) if self.links else 0,
        )

    def status(self, response: party_pb2.StatusResponse) -> None:
        response.ledger.CopyFrom(self.health())

    def health(self) -> party_pb2.LedgerHealth:
        assert self.node is not None
        tip = self.node.tip()
        return party_pb2.LedgerHealth(
            validator=self.node.core is not None,
            height=tip.height,
            round=tip.round,
            mempool_size=tip.mempool_size,
            since_last_commit_s=time.monotonic() - self.node.stats.last_commit_monotonic,
            log_size=tip.log_size,
        )

    # -- what the node sends ---------------------------------------------------------------

    def _send_consensus(self, message: consensus_pb2.ConsensusMessage) -> None:
        if self.links is not None:
            gossip = ledger_service_pb2.GossipMessage(consensus=message)
            self.links.send(self._validator_ids, gossip)

    def _broadcast_record(self, raw: bytes) -> None:
        # Validators need every record for their mempools; a member that does not
        # vote relays what it is given to them the same way.
        if self.links is not None:
            self.links.send(self._validator_ids, gossip_record(raw))

    def _announce(self, height: int) -> None:
        if self.links is not None:
            self.links.send(self._peer_ids, ledger_service_pb2.GossipMessage(tip_height=height))
