"""The Prometheus endpoint of a real daemon: scraped over HTTP, values move with activity."""

from __future__ import annotations

import re
import time
import tomllib
import urllib.request

import pytest

from mpc_ledger.daemon.processes import DaemonProcess, stop_all
from mpc_ledger.jobs.lifecycle import STATUSES
from mpc_ledger.ledger.client import LedgerClient
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import run_cli

pytestmark = pytest.mark.integration


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        return response.read().decode()


def value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


def test_metrics_are_scraped_and_follow_the_ledger(tmp_path):
    consortium = make_consortium(tmp_path / "c", "a,b,c", auditor=True)
    daemons = [DaemonProcess(consortium.config(m), tmp_path / f"{m}.log") for m in consortium.ids]
    try:
        for member_id, daemon in zip(consortium.ids, daemons, strict=True):
            daemon.wait_serving(consortium.genesis.member(member_id).endpoint)
        config = tomllib.loads(consortium.config("a").read_text())
        address = config["metrics"]["listen"]
        before = scrape(address)
        client = LedgerClient(consortium.party("a"))
        record = client.note("metrics")
        reply = client.submit(record)
        assert client.wait_committed(reply.record_id, 20).committed
        duplicate = client.submit(record)
        assert not duplicate.accepted
        after = scrape(address)
        client.close()
        assert value(after, "mpc_ledger_height") > value(before, "mpc_ledger_height")
        assert value(after, "mpc_ledger_log_size") == 1
        assert value(after, "mpc_ledger_commit_latency_seconds_count") == 1
        assert value(after, "mpc_ledger_fsync_seconds_count") > 0
        deadline = time.monotonic() + 10  # each link counts once it has written to its peer
        while value(scrape(address), "mpc_ledger_peers_connected") < 3:
            assert time.monotonic() < deadline, "not every peer link came up"
            time.sleep(0.2)
        assert value(after, "mpc_ledger_rounds_per_height_count") >= 1
        assert 'mpc_ledger_records_rejected_total{reason="duplicate"} 1.0' in after
        for state in STATUSES:  # every known state, before any job (the multihost test runs one)
            assert value(after, f'mpc_ledger_jobs{{state="{state}"}}') == 0
        status = run_cli("status", "--config", consortium.config("a"), "--timeout-ms", "5000")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "\njobs       none\n" in status.stdout, status.stdout
    finally:
        stop_all(daemons)
