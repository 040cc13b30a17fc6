"""Fixtures for the verifier: a real consortium's genesis and keys, chains built in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpc_ledger.cli.main import main
from mpc_ledger.proto.v1 import export_pb2
from mpc_ledger.testing.chains import ChainBuilder
from mpc_ledger.testing.consortium import LocalConsortium, make_consortium
from mpc_ledger.verify.container import EXPORT_FORMAT, ExportWriter
from mpc_ledger.verify.export import write_export


@pytest.fixture(scope="session")
def consortium(tmp_path_factory) -> LocalConsortium:
    """Members a, b, c and a validator-only auditor: 4 validators, quorum 3."""
    return make_consortium(tmp_path_factory.mktemp("verify") / "c", "a,b,c", auditor=True)


@pytest.fixture(scope="session")
def other_consortium(tmp_path_factory) -> LocalConsortium:
    return make_consortium(tmp_path_factory.mktemp("verify-other") / "c", "a,b,c", auditor=True)


@pytest.fixture(scope="session")
def member_keys(consortium):
    return {m: consortium.party(m).identity.signing_key for m in consortium.ids}


@pytest.fixture
def builder(consortium, member_keys) -> ChainBuilder:
    return ChainBuilder(consortium.genesis, member_keys)


def standard_chain(builder: ChainBuilder) -> ChainBuilder:
    """Six blocks: a binds a/alice; notes by members and by alice; one empty block."""
    builder.commit([builder.bind("a", "a/alice"), builder.note("b", "first")])
    builder.commit([builder.note("a/alice", "alice speaks"), builder.note("c", "hello there")])
    builder.commit(
        [builder.note("a", "one"), builder.note("b", "two"), builder.note("auditor", "three")]
    )
    builder.commit([])
    builder.commit([builder.note("a/alice", "again"), builder.note("c", "four")])
    builder.commit([builder.note("b", "five")])
    return builder


def export_chain(
    consortium: LocalConsortium,
    builder: ChainBuilder,
    path: Path,
    *,
    from_height: int = 1,
    to_height: int | None = None,
    blocks=None,
) -> Path:
    """Export the builder's chain as a party would; ``blocks`` (tampered) are written as given."""
    if blocks is not None:
        return write_raw_export(consortium, path, blocks, to_height=to_height)
    write_export(
        path,
        builder.blocks,
        genesis_json=consortium.genesis_path.read_bytes(),
        chain_id=consortium.genesis.chain_id,
        from_height=from_height,
        to_height=len(builder.blocks) if to_height is None else to_height,
        exporter_id="a",
        created_ms=1_700_000_000_000,
    )
    return path


def write_raw_export(
    consortium: LocalConsortium, path: Path, blocks, *, to_height: int | None = None, **header
) -> Path:
    """A full export of exactly ``blocks``, as a forger would write it (no sanity checks)."""
    fields = {
        "format": EXPORT_FORMAT,
        "genesis_json": consortium.genesis_path.read_bytes(),
        "chain_id": consortium.genesis.chain_id,
        "from_height": 1,
        "to_height": to_height if to_height is not None else len(blocks),
        "exporter_id": "a",
        **header,
    }
    with ExportWriter(path, export_pb2.ExportHeader(**fields)) as writer:
        for block in blocks:
            writer.block(block)
        last = blocks[-1].block.header
        writer.finish(last.log_size, last.log_root)
    return path


def run_cli_inprocess(*argv: str | Path) -> int:
    """`mpc-ledger ARGV...` in this process, with main()'s error handling."""
    return main([str(a) for a in argv])
