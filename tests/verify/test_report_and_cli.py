"""Reports (text, JSON, HTML) and the offline `verify` command."""

from __future__ import annotations

import json
import subprocess
import sys

from mpc_ledger.ledger.records import parse_record
from mpc_ledger.verify import build_record_proof, render, verify_export, write_proof

from .conftest import export_chain, run_cli_inprocess, standard_chain


def test_verify_text_report_exit_0(consortium, builder, tmp_path, capsys):
    standard_chain(builder)
    path = export_chain(consortium, builder, tmp_path / "x")
    code = run_cli_inprocess("verify", path, "--genesis", consortium.genesis_path)
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"VERIFIED: {path}")
    assert "ok      record-signature" in out and "Records by author" in out


def test_verify_json_report_of_a_failure_exit_1(consortium, builder, tmp_path, capsys):
    standard_chain(builder)
    builder.commit([builder.note("a")], signers=["a", "b"])
    path = export_chain(consortium, builder, tmp_path / "x")
    code = run_cli_inprocess(
        "verify", path, "--genesis", consortium.genesis_path, "--format", "json"
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document["ok"] is False
    assert document["failures"] == [
        {
            "check": "certificate",
            "height": 7,
            "message": "2 valid signatures of distinct validators, a quorum is 3 of 4",
        }
    ]
    statuses = {c["check"]: c["status"] for c in document["checks"]}
    assert statuses["certificate"] == "failed" and statuses["records-root"] == "ok"
    assert document["validators"] == {"a": 7, "auditor": 6, "b": 7}


def test_verify_html_report_to_a_file(consortium, builder, tmp_path, capsys):
    standard_chain(builder)
    path = export_chain(consortium, builder, tmp_path / "x")
    report_path = tmp_path / "report.html"
    code = run_cli_inprocess(
        "verify", path, "--genesis", consortium.genesis_path, "--format", "html", "-o", report_path
    )
    assert code == 0
    assert capsys.readouterr().out.startswith("VERIFIED: ")
    page = report_path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert "http" not in page and "<script" not in page  # standalone, no external assets


def test_html_escapes_what_the_export_says(consortium, builder, tmp_path):
    hostile = "<img src=x onerror=alert(1)>"
    builder.commit([builder.note(hostile, "x")])
    report = verify_export(export_chain(consortium, builder, tmp_path / "x"), consortium.genesis)
    assert not report.ok
    page = render(report, "html")
    assert hostile not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert hostile in render(report, "text")  # a terminal shows it as it is


def test_verify_with_a_genesis_that_is_not_one(consortium, builder, tmp_path, capsys):
    standard_chain(builder)
    path = export_chain(consortium, builder, tmp_path / "x")
    (tmp_path / "g.json").write_text("{nope")
    code = run_cli_inprocess("verify", path, "--genesis", tmp_path / "g.json")
    assert code == 2 and "g.json" in capsys.readouterr().err


def test_verify_with_previous_from_the_cli(consortium, builder, tmp_path, capsys):
    standard_chain(builder)
    old = export_chain(consortium, builder, tmp_path / "old", to_height=4)
    new = export_chain(consortium, builder, tmp_path / "new")
    code = run_cli_inprocess("verify", new, "--genesis", consortium.genesis_path, "--previous", old)
    out = capsys.readouterr().out
    assert code == 0 and "extends previous" in out and "ok      consistency" in out


# Runs `verify` and `verify-proof` to the end in a fresh interpreter, then lists what got
# imported: imports inside functions count too, not only those at import time.
OFFLINE_RUN = """
import argparse, json, sys
from mpc_ledger.cli import compliance
parser = argparse.ArgumentParser()
compliance.register(parser.add_subparsers(required=True))
codes = []
for argv in json.loads(sys.argv[1]):
    args = parser.parse_args(argv)
    codes.append(args.handler(args))
network = sorted(m for m in sys.modules if m.split(".")[0] == "grpc" or m.startswith((
    "mpc_ledger.net", "mpc_ledger.daemon", "mpc_ledger.ledger.client",
    "mpc_ledger.ledger.network", "mpc_ledger.metrics", "mpc_ledger.identity.party")))
rules = "mpc_ledger.jobs.rules" in sys.modules
print(json.dumps({"codes": codes, "network": network, "rules": rules}))
"""


def test_the_offline_path_imports_no_network_code(consortium, builder, tmp_path):
    standard_chain(builder)
    export = export_chain(consortium, builder, tmp_path / "x")
    target = parse_record(builder.blocks[2].block.records[1]).id
    write_proof(tmp_path / "p", build_record_proof(builder.blocks, builder.chain_id, target))
    genesis = str(consortium.genesis_path)
    runs = [
        ["verify", str(export), "--genesis", genesis, "-o", str(tmp_path / "report.txt")],
        ["verify-proof", str(tmp_path / "p"), "--genesis", genesis],
    ]
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_RUN, json.dumps(runs)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.splitlines()[-1])
    assert seen["codes"] == [0, 0]  # both ran to a verdict, so every lazy import happened
    assert seen["rules"]  # the verifier's rulebook holds the job rules
    assert seen["network"] == []
