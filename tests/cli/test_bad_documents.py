"""Files nested too deeply or holding integers too large for the wire: each one is a clear
one-line error from the real CLI (a child process) with exit 2, never a traceback."""

from __future__ import annotations

import json

import pytest

from mpc_ledger.testing.chains import ChainBuilder
from mpc_ledger.testing.consortium import make_consortium
from mpc_ledger.testing.processes import run_cli
from mpc_ledger.verify.export import write_export

DEPTH = 100_000  # far past what the parsers' recursion allows


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    return make_consortium(tmp_path_factory.mktemp("documents") / "c", "a,b")


def one_line_error(result, *, exit_code: int = 2) -> str:
    assert result.returncode == exit_code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def test_a_genesis_consensus_value_beyond_its_field_is_one_clear_error(consortium, tmp_path):
    document = json.loads(consortium.genesis_path.read_text())
    document["consensus"]["timeout_propose_ms"] = 2**32
    genesis = tmp_path / "genesis.json"
    genesis.write_text(json.dumps(document))
    result = run_cli("verify", tmp_path / "ledger.export", "--genesis", genesis)
    assert one_line_error(result) == (
        f"mpc-ledger: error: {genesis}: consensus.timeout_propose_ms: must be an integer "
        "from 1 to 4294967295"
    )


def test_consortium_init_refuses_an_interval_beyond_the_genesis_field(tmp_path):
    out = tmp_path / "c"
    result = run_cli(
        "consortium", "init", "--parties", "a", "--empty-block-interval-ms", 2**32, "--out", out
    )
    assert one_line_error(result) == (
        "mpc-ledger: error: --empty-block-interval-ms: must be 0 to 4294967295"
    )
    assert not out.exists()  # refused before any key was made


def test_deeply_nested_json_is_one_clear_error(consortium, tmp_path):
    nested = "[" * DEPTH + "]" * DEPTH
    genesis = tmp_path / "genesis.json"
    genesis.write_text('{"format": "mpc-ledger/genesis/v1", "members": ' + nested + "}")
    result = run_cli("verify", tmp_path / "ledger.export", "--genesis", genesis)
    assert one_line_error(result) == (
        f"mpc-ledger: error: {genesis}: not valid JSON: nested more than 32 levels deep"
    )
    member = tmp_path / "member.json"
    member.write_text('{"format": "mpc-ledger/member/v1", "roles": ' + nested + "}")
    out = tmp_path / "assembled.json"
    result = run_cli("consortium", "assemble", member, "--out", out)
    assert one_line_error(result) == (
        f"mpc-ledger: error: {member}: not valid JSON: nested more than 32 levels deep"
    )
    assert not out.exists()


def test_deeply_nested_toml_is_one_clear_error(consortium, tmp_path):
    nested = "[" * DEPTH + "]" * DEPTH
    spec = tmp_path / "job.toml"
    spec.write_text(f'name = "deep"\nepochs = {nested}\n')
    result = run_cli("job", "submit", spec, "--profile", tmp_path / "nobody")
    assert one_line_error(result) == (
        f"mpc-ledger: error: {spec}: not valid TOML: nested more than 32 levels deep"
    )
    config = tmp_path / "party.toml"
    config.write_text("[party]\npeers = " + "{a = " * DEPTH + "1" + "}" * DEPTH + "\n")
    for command in (("status",), ("party", "start")):
        result = run_cli(*command, "--config", config)
        assert one_line_error(result) == (
            f"mpc-ledger: error: {config}: not valid TOML: nested more than 32 levels deep"
        )


def test_an_export_whose_embedded_genesis_is_deeply_nested_fails_verification(consortium, tmp_path):
    keys = {m: consortium.party(m).identity.signing_key for m in consortium.ids}
    builder = ChainBuilder(consortium.genesis, keys)
    builder.commit([builder.note("a", "one")])
    export = tmp_path / "ledger.export"
    write_export(
        export,
        builder.blocks,
        genesis_json=("[" * DEPTH + "]" * DEPTH).encode(),
        chain_id=consortium.genesis.chain_id,
        from_height=1,
        to_height=len(builder.blocks),
        exporter_id="a",
        created_ms=1_700_000_000_000,
    )
    result = run_cli("verify", export, "--genesis", consortium.genesis_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "the genesis embedded in the export does not state this chain id" in result.stdout


def test_a_deeply_nested_user_file_or_profile_is_one_clear_error(consortium, tmp_path):
    user_file = tmp_path / "user.json"
    user_file.write_text(
        '{"format": "mpc-ledger/user/v1", "roles": ' + "[" * DEPTH + "]" * DEPTH + "}"
    )
    result = run_cli(
        "user", "add", user_file, "--roles", "scientist", "--config", consortium.config("a")
    )
    assert one_line_error(result) == (
        f"mpc-ledger: error: {user_file}: not valid JSON (nested more than 32 levels deep)"
    )
    profile = tmp_path / "profile"
    profile.mkdir()
    (profile / "user.toml").write_text("user_id = " + "[" * DEPTH + "]" * DEPTH + "\n")
    result = run_cli("job", "list", "--profile", profile)
    assert one_line_error(result) == (
        f"mpc-ledger: error: {profile / 'user.toml'}: not valid TOML: nested more than 32 "
        "levels deep"
    )
