"""Offline verification throughput: `mpc-ledger verify` over an export of signed records.

    python benchmarks/verify_bench.py            # 100,000 records (about a minute)
    python benchmarks/verify_bench.py --smoke    # 2,000 records, seconds; what the tests run

Builds, in this process, a ledger of N signed records (notes by members and
by users whose keys members bound) in certified blocks: real Ed25519 record
signatures, real precommit certificates from a quorum of a real consortium's
validators (`consortium init`), no daemons. Exports it with the exporter the
CLI uses, then times `verify_export` on it: every certificate, hash link,
records root, log root, record signature and permission, as
`mpc-ledger verify` does.

The baseline in the same run is PyNaCl alone verifying Ed25519 signatures
over messages of the same size, on the same core: record signatures are the
bulk of the verifier's work, so this rate bounds what it can reach. The
baseline is measured before and after the verification and averaged, since
the machine's load can change in between. The process is pinned to one core
and both rates are per second of this process's CPU time, so that other
processes sharing the core do not count against it; the wall-clock rate is
printed too.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import nacl.signing

from mpc_ledger.identity.signing import Purpose, signing_bytes
from mpc_ledger.testing.chains import ChainBuilder
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.verify import verify_export
from mpc_ledger.verify.export import write_export

TARGET_RECORDS_PER_S = 10_000
NOTE_BYTES = 200
USERS_PER_MEMBER = 4


def pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    core = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def build_export(root: Path, records: int, block_records: int) -> tuple[Path, object, int]:
    with contextlib.redirect_stdout(io.StringIO()):
        consortium = make_consortium(root / "c", "a,b,c", auditor=True)
    genesis = consortium.genesis
    keys = {m: consortium.party(m).identity.signing_key for m in consortium.ids}
    builder = ChainBuilder(genesis, keys)
    members = ["a", "b", "c"]
    users = [f"{m}/user{i}" for m in members for i in range(USERS_PER_MEMBER)]
    builder.commit([builder.bind(u.split("/")[0], u) for u in users])
    authors = members + users
    made = len(users)
    payload = b"\x5a" * NOTE_BYTES
    while made < records:
        count = min(block_records, records - made)
        batch = [
            builder.note(authors[(made + i) % len(authors)], f"reading {made + i}", payload)
            for i in range(count)
        ]
        builder.commit(batch)
        made += count
    path = root / "ledger.export"
    write_export(
        path,
        builder.blocks,
        genesis_json=consortium.genesis_path.read_bytes(),
        chain_id=genesis.chain_id,
        from_height=1,
        to_height=len(builder.blocks),
        exporter_id="a",
        created_ms=int(time.time() * 1000),
    )
    return path, genesis, len(builder.blocks)


def baseline_verifies_per_s(count: int, message_bytes: int) -> float:
    """PyNaCl verifying ``count`` signatures over distinct messages of ``message_bytes``."""
    key = nacl.signing.SigningKey.generate()
    verify_key = key.verify_key
    prefix = signing_bytes(Purpose.RECORD, b"\x01" * 32, b"")
    messages = [prefix + i.to_bytes(8, "big") * (message_bytes // 8) for i in range(count)]
    signatures = [key.sign(m).signature for m in messages]
    started = time.process_time()
    for message, signature in zip(messages, signatures, strict=True):
        verify_key.verify(message, signature)
    return count / (time.process_time() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2,000 records: seconds")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--block-records", type=int, default=500)
    args = parser.parse_args()
    records = args.records or (2_000 if args.smoke else 100_000)
    pinned = pin_to_one_core()
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as raw:
        started = time.perf_counter()
        path, genesis, blocks = build_export(Path(raw), records, args.block_records)
        built_s = time.perf_counter() - started
        size_mib = path.stat().st_size / (1 << 20)
        message_bytes = NOTE_BYTES + 100
        baseline_count = min(records, 20_000)
        before = baseline_verifies_per_s(baseline_count, message_bytes)
        started, started_cpu = time.perf_counter(), time.process_time()
        report = verify_export(path, genesis)  # type: ignore[arg-type]
        verify_cpu_s = time.process_time() - started_cpu
        verify_s = time.perf_counter() - started
        after = baseline_verifies_per_s(baseline_count, message_bytes)
    if not report.ok:
        print(f"verification FAILED: {report.failures[:3]}", file=sys.stderr)
        return 1
    baseline = (before + after) / 2
    rate = records / verify_cpu_s
    wall_rate = records / verify_s
    print(
        f"export: {records} records in {blocks} blocks, {size_mib:.1f} MiB "
        f"(built in {built_s:.1f} s)"
    )
    print(f"one core ({pinned}), Python {sys.version.split()[0]}")
    print(
        f"baseline, PyNaCl Ed25519 verify alone:   {baseline:>8.0f} signatures/s "
        f"(before {before:.0f}, after {after:.0f})"
    )
    print(
        f"verify, every check:                     {rate:>8.0f} records/s "
        f"({verify_cpu_s:.2f} s CPU; {rate / baseline:.2f} x baseline)"
    )
    print(
        f"verify, wall clock:                      {wall_rate:>8.0f} records/s "
        f"({verify_s:.2f} s; lower when other processes share the core)"
    )
    met = "met" if rate >= TARGET_RECORDS_PER_S else "NOT met"
    print(f"target >= {TARGET_RECORDS_PER_S} records/s: {met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
