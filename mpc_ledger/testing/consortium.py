"""Local consortia made by the code `consortium init` runs, for tests and benchmarks."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import urllib.request
from pathlib import Path

from mpc_ledger.consortium import create_local_consortium
from mpc_ledger.identity.genesis import ConsensusParams, Genesis, load_genesis
from mpc_ledger.identity.party import Party, load_party

__all__ = ["LocalConsortium", "make_consortium", "metric_value"]


@dataclasses.dataclass
class LocalConsortium:
    root: Path
    ids: list[str]

    @property
    def genesis_path(self) -> Path:
        return self.root / "genesis.json"

    @property
    def genesis(self) -> Genesis:
        return load_genesis(self.genesis_path)

    def config(self, member_id: str) -> Path:
        return self.root / member_id / "party.toml"

    def party(self, member_id: str) -> Party:
        return load_party(self.config(member_id))

    def scrape_metrics(self, member_id: str) -> str:
        """The member's daemon's Prometheus text (`[metrics] listen`, which init sets)."""
        address = tomllib.loads(self.config(member_id).read_text())["metrics"]["listen"]
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            return str(response.read().decode())


def metric_value(text: str, name: str, absent: float | None = None) -> float:
    """``name``'s value in Prometheus ``text``; ``absent`` when it is not there (a labelled
    series not yet counted), else an AssertionError."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match or absent is not None, f"{name} not in metrics"
    return float(match.group(1)) if match else float(absent or 0)


def make_consortium(
    root: Path,
    parties: str = "a,b,c",
    *,
    dealer: bool = False,
    auditor: bool = False,
    empty_block_interval_ms: int = ConsensusParams().empty_block_interval_ms,
) -> LocalConsortium:
    """What `mpc-ledger consortium init --parties PARTIES --out ROOT --base-port 0` makes
    (`mpc_ledger.consortium.create_local_consortium`), with a dealer and an auditor if asked."""
    made = create_local_consortium(
        root,
        parties.split(","),
        dealer=dealer,
        auditor=auditor,
        base_port=0,
        empty_block_interval_ms=empty_block_interval_ms,
    )
    return LocalConsortium(root, list(made.member_ids))
