"""Four parties on four "hosts": network namespaces on one machine, one LAN through a switch.

Data parties a, b and c and d (dealer and validator), so four validators (n = 4,
f = 1). Each is made the way a real member is, on its own: `party keygen` with its own
address as endpoint, then `consortium assemble` of the four member files. Every command
that talks to a daemon runs inside that member's namespace (`ip netns exec`); this
process reaches a daemon's metrics port through `Lan.run_in`. Nothing here dials the
namespaces' addresses from the host's own network.

1. A vertical job over the three data parties, with d as the dealer, runs to completion;
   the jobs gauge and `mpc-ledger status` count it.
2. d's cable is pulled (its switch port goes down): a, b and c keep committing, notes
   included, and d stays where it was.
3. The cable is back: d catches up and holds the same blocks (the same block id at the
   same height; each header chains to the one before it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from mpc_ledger.daemon.processes import CLI, DaemonProcess, stop_all
from mpc_ledger.testing.netns import Lan, unavailable_reason

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLES = {
    "a": "data,validator",
    "b": "data,validator",
    "c": "data,validator",
    "d": "dealer,validator",
}
PORT, METRICS_PORT = 7001, 9464
ROWS = 80
POLICY = """version = 1
submitters = ["a/*"]
datasets = ["*"]
models = ["logistic_regression"]
max_epochs = 5
recipients = ["a/*"]
allow_loss_reveal = true
min_rows = 0
"""
JOB = """name = "multihost"
layout = "vertical"
alignment = "row-order"  # the rows are aligned by construction
label = "y"
epochs = 1
batch_size = 32
seed = 1
test_fraction = 0.25
recipients = ["a/alice"]

[[datasets]]
id = "a/feat"
features = ["f0", "f1"]

[[datasets]]
id = "b/more"
features = ["g0", "g1"]

[[datasets]]
id = "c/lab"
features = ["h0"]

[model]
kind = "logistic_regression"

[optimiser]
learning_rate = 0.5
"""
# The hosts' addresses are only reachable inside the LAN: never through a proxy.
PROXY_VARIABLES = ("http_proxy", "https_proxy", "grpc_proxy", "all_proxy")
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
DATASETS = {  # member: (dataset id, header, extra `dataset register` arguments)
    "a": ("a/feat", ["id", "f0", "f1"], []),
    "b": ("b/more", ["id", "g0", "g1"], []),
    "c": ("c/lab", ["id", "h0", "y"], ["--label-column", "y"]),
}


@dataclasses.dataclass
class World:
    root: Path
    lan: Lan
    daemons: dict[str, DaemonProcess]

    def config(self, member: str) -> Path:
        return self.root / member / "party.toml"

    def cli(self, member: str, *args: str | Path, ok: bool = True, timeout_s: float = 60) -> str:
        """`mpc-ledger ARGS...` on ``member``'s host; its stdout (asserts success if ``ok``)."""
        result = subprocess.run(
            [*self.lan.prefix(member), *CLI, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if ok:
            assert result.returncode == 0, f"{member}: {args}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def metrics(self, member: str) -> str:
        url = f"http://{self.lan.address(member)}:{METRICS_PORT}/metrics"

        def scrape() -> str:
            with NO_PROXY.open(url, timeout=5) as response:
                return str(response.read().decode())

        return self.lan.run_in(member, scrape)

    def metric(self, member: str, series: str) -> float:
        text = self.metrics(member)
        match = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.MULTILINE)
        assert match, f"{series} not in {member}'s metrics"
        return float(match.group(1))

    def height(self, member: str) -> int:
        return int(self.metric(member, "mpc_ledger_height"))

    def heights(self, members: Iterable[str] = ROLES) -> dict[str, int]:
        return {member: self.height(member) for member in members}


def wait_until(condition: Callable[[], bool], timeout_s: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"after {timeout_s}s: {what()}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def lan() -> Iterator[Lan]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"the multi-host test needs network namespaces: {reason}")
    with Lan(list(ROLES), network="10.231.7.0/24") as made:
        yield made


def make_members(root: Path, lan: Lan) -> None:
    """Each member made on its own with `party keygen`, then `consortium assemble`."""
    for member, roles in ROLES.items():
        endpoint = f"{lan.address(member)}:{PORT}"
        run(*CLI, "party", "keygen", "--id", member, "--endpoint", endpoint, "--roles", roles,
            "--organisation", f"host {member}", "--out", root / member)  # fmt: skip
    members = [root / m / "member.json" for m in ROLES]
    run(*CLI, "consortium", "assemble", *members, "--out", root / "genesis.json", "--name", "mh")
    for member in ROLES:
        shutil.copy(root / "genesis.json", root / member / "genesis.json")
        config = root / member / "party.toml"
        text = config.read_text()
        if member in DATASETS:
            (root / member / "policy.toml").write_text(POLICY)
            text = text.replace("[party]\n", '[party]\npolicy = "policy.toml"\n')
        metrics = f'\n[metrics]\nlisten = "{lan.address(member)}:{METRICS_PORT}"\n'
        config.write_text(text + metrics)


def run(*argv: str | Path) -> None:
    result = subprocess.run(list(map(str, argv)), capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"


def write_data(root: Path) -> None:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(ROWS, 5)).round(4)
    labels = (features @ np.array([1.0, -0.5, 0.8, 0.3, -1.0]) > 0).astype(np.int64)
    ids = [f"p{i}" for i in range(ROWS)]
    columns = {"a": [*features[:, :2].T], "b": [*features[:, 2:4].T], "c": [features[:, 4], labels]}
    for member, (_, header, _) in DATASETS.items():
        rows = zip(ids, *columns[member], strict=True)
        lines = [",".join(header), *(",".join(map(str, row)) for row in rows)]
        (root / f"{member}.csv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def world(lan: Lan, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("multihost")
    make_members(root, lan)
    write_data(root)
    with pytest.MonkeyPatch.context() as patch:  # for the daemons and every CLI call
        for name in PROXY_VARIABLES:
            patch.delenv(name, raising=False)
            patch.delenv(name.upper(), raising=False)
        yield from _started(root, lan)


def _started(root: Path, lan: Lan) -> Iterator[World]:
    """Each daemon started on its host, the datasets registered; every daemon stopped after."""
    daemons: dict[str, DaemonProcess] = {}
    try:
        for member in ROLES:
            config, log = root / member / "party.toml", root / f"{member}.log"
            daemons[member] = DaemonProcess(config, log, prefix=lan.prefix(member))
        for member, daemon in daemons.items():
            endpoint = f"{lan.address(member)}:{PORT}"
            lan.run_in(member, lambda d=daemon, e=endpoint: d.wait_serving(e, 60), timeout_s=70)
        made = World(root, lan, daemons)
        for member, (dataset_id, header, extra) in DATASETS.items():
            types = ["string", *(["float64"] * (len(header) - 2)), "int64" if extra else "float64"]
            columns = ",".join(f"{name}:{kind}" for name, kind in zip(header, types, strict=True))
            made.cli(member, "dataset", "register", root / f"{member}.csv", "--id", dataset_id,
                     "--columns", columns, *extra, "--config", made.config(member))  # fmt: skip
        yield made
    finally:
        stop_all(list(daemons.values()))


def test_a_joint_job_runs_across_four_hosts(world: World) -> None:
    root = world.root
    assert world.metric("a", 'mpc_ledger_jobs{state="completed"}') == 0
    profile = root / "alice"
    world.cli("a", "user", "keygen", "--id", "a/alice", "--out", profile)
    world.cli("a", "user", "add", profile / "user.json", "--roles", "scientist",
              "--config", world.config("a"), "--out", profile / "keys" / "tls.crt")  # fmt: skip
    shutil.copy(root / "genesis.json", profile / "genesis.json")
    (root / "job.toml").write_text(JOB)

    job_id = world.cli("a", "job", "submit", root / "job.toml", "--profile", profile).strip()
    watched = world.cli("a", "job", "watch", job_id, "--profile", profile, timeout_s=120)
    assert "job completed: test_accuracy" in watched, watched

    for member in ROLES:  # every host's gauge counts it, once its copy has the record
        wait_until(
            lambda m=member: world.metric(m, 'mpc_ledger_jobs{state="completed"}') == 1,
            10,
            lambda m=member: f"{m}: jobs gauge not at 1 completed:\n{world.metrics(m)}",
        )
        assert world.metric(member, 'mpc_ledger_jobs{state="running"}') == 0
    for member in ("a", "b", "c"):  # the data parties' workers' traffic, by job
        assert world.metric(member, f'mpc_ledger_mpc_rounds{{job="{job_id}"}}') > 0
        assert world.metric(member, f'mpc_ledger_mpc_bytes_total{{job="{job_id}"}}') > 0
    status = world.cli("a", "status", "--config", world.config("a"), "--timeout-ms", "5000")
    assert "\njobs       1 completed\n" in status, status
    assert "3/3 answering over mTLS" in status, status
    shown = json.loads(world.cli("a", "job", "show", job_id, "--format", "json",
                                 "--profile", profile))  # fmt: skip
    kinds = [entry["kind"] for entry in shown]
    assert kinds.count("job_decision") == 3 and kinds.count("job_started") == 4, kinds


def test_a_cut_host_falls_behind_then_catches_up_with_the_same_blocks(world: World) -> None:
    others = ("a", "b", "c")
    wait_until(
        lambda: max(map(world.height, ROLES)) - world.height("d") <= 1,
        20,
        lambda: f"d not in step before the cut: {world.heights()}",
    )
    world.lan.cut("d")
    try:
        time.sleep(1.0)  # a block in flight when the cable went may still land on d
        stuck_at = world.height("d")
        before = world.heights(others)
        notes = {}
        for member in others:
            reply = world.cli(member, "ledger", "note", f"while d is cut, from {member}",
                              "--format", "json", "--config", world.config(member))  # fmt: skip
            notes[member] = json.loads(reply)
        for member in others:
            assert world.height(member) > before[member], f"{member} stopped committing"
        for member, note in notes.items():
            assert note["height"] > stuck_at, f"{member}'s note at {note['height']} <= {stuck_at}"
        wait_until(  # and the ledger keeps going for at least one more (empty) block
            lambda: min(map(world.height, others)) > max(n["height"] for n in notes.values()),
            15,
            lambda: f"a, b, c stalled: {world.heights(others)}",
        )
        assert world.height("d") == stuck_at, "d advanced with its cable cut"
    finally:
        world.lan.restore("d")

    target = max(map(world.height, others))
    wait_until(
        lambda: world.height("d") >= target,
        45,
        lambda: (
            f"d not caught up to {target}: {world.heights()}\n{world.daemons['d'].log()[-3000:]}"
        ),
    )

    def block(member: str, height: int) -> dict[str, object]:
        shown = world.cli(member, "ledger", "show", str(height), "--format", "json",
                          "--config", world.config(member))  # fmt: skip
        return dict(json.loads(shown))

    common = {m: block(m, target) for m in ROLES}
    ids = {m: (b["block_id"], b["previous_block_hash"]) for m, b in common.items()}
    assert len(set(ids.values())) == 1, f"block {target} differs between hosts: {ids}"
    for member, note in notes.items():  # what d missed is on d now, where the others have it
        records = block("d", note["height"])["records"]
        assert isinstance(records, list)
        assert note["record_id"] in [r["id"] for r in records], (member, note, records)
