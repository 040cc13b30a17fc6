import json

import pytest

from mpc_ledger.errors import ConfigError
from mpc_ledger.identity.genesis import (
    DEFAULT_MIN_TEST_ROWS,
    MpcParams,
    QuotaParams,
    assemble_genesis,
    load_genesis,
    load_member_file,
)
from mpc_ledger.identity.material import generate_party_material


@pytest.fixture(scope="module")
def member_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    specs = [("a", "127.0.0.1:7101", ("data", "validator")), ("b", "127.0.0.1:7102", ("data",))]
    for member_id, endpoint, roles in specs:
        generate_party_material(
            root / member_id, member_id=member_id, endpoint=endpoint, roles=roles
        )
    return root


def members(root):
    return [load_member_file(root / m / "member.json") for m in ("a", "b")]


def write_genesis(root, tmp_path):
    genesis = assemble_genesis(
        members(root), consortium="t", genesis_time="2026-01-01T00:00:00Z", sources=["a", "b"]
    )
    path = tmp_path / "genesis.json"
    path.write_text(genesis.to_json())
    return genesis, path


def test_chain_id_ignores_json_formatting_and_member_order(member_dirs, tmp_path):
    genesis, path = write_genesis(member_dirs, tmp_path)
    document = json.loads(path.read_text())
    document["members"].reverse()
    path.write_text(json.dumps(document, separators=(",", ":")))
    assert load_genesis(path).chain_id == genesis.chain_id


def test_edited_genesis_is_refused(member_dirs, tmp_path):
    _, path = write_genesis(member_dirs, tmp_path)
    document = json.loads(path.read_text())
    document["members"][1]["endpoint"] = "127.0.0.1:9999"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="changed after it was assembled") as error:
        load_genesis(path)
    assert error.value.field == "chain_id"


def test_chain_id_changes_with_any_member_field(member_dirs, tmp_path):
    genesis, path = write_genesis(member_dirs, tmp_path)
    document = json.loads(path.read_text())
    del document["chain_id"]
    document["members"][0]["roles"] = ["data", "observer", "validator"]
    path.write_text(json.dumps(document))
    assert load_genesis(path).chain_id != genesis.chain_id


def test_assemble_reports_every_problem_at_once(member_dirs):
    a, b = members(member_dirs)
    b_clash = type(b)(
        id="a",
        roles=("data",),
        signing_public_key=a.signing_public_key,
        tls_ca_certificate=b.tls_ca_certificate,
        endpoint=a.endpoint,
    )
    with pytest.raises(ConfigError) as error:
        assemble_genesis(
            [a, b_clash], consortium="t", genesis_time="x", sources=["a.json", "b.json"]
        )
    message = str(error.value)
    assert "b.json: id: same as a.json" in message
    assert "b.json: signing_public_key: same as a.json" in message
    assert "b.json: endpoint: same as a.json" in message


def test_assemble_needs_a_validator(member_dirs):
    _, b = members(member_dirs)
    with pytest.raises(ConfigError, match="at least one member must have the 'validator' role"):
        assemble_genesis([b], consortium="t", genesis_time="x", sources=["b.json"])


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("endpoint", "no-port", "is not host:port"),
        ("endpoint", "0.0.0.0:7000", "wildcard address cannot be dialled"),
        ("endpoint", "host:70000", "port must be a number from 1 to 65535"),
        ("id", "Bad_Id", "must match"),
        ("roles", ["data", "king"], "unknown role(s) ['king']"),
        ("roles", [], "a non-empty list"),
        ("signing_public_key", "abcd", "must be 32 bytes"),
        ("signing_public_key", "zz", "not hex"),
        (
            "tls_ca_certificate",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "not a PEM X.509 certificate",
        ),
        ("tls_ca_fingerprint_sha256", "00" * 32, "does not match tls_ca_certificate"),
    ],
)
def test_bad_member_file_names_the_field(member_dirs, tmp_path, field, value, expected):
    document = json.loads((member_dirs / "a" / "member.json").read_text())
    document[field] = value
    path = tmp_path / "member.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as error:
        load_member_file(path)
    assert str(path) in str(error.value)
    assert f"{field}: " in str(error.value)
    assert expected in str(error.value)


def test_leaf_certificate_is_not_accepted_as_a_ca(member_dirs, tmp_path):
    document = json.loads((member_dirs / "a" / "member.json").read_text())
    document["tls_ca_certificate"] = (member_dirs / "a" / "keys" / "tls.crt").read_text()
    del document["tls_ca_fingerprint_sha256"]
    path = tmp_path / "member.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError, match="is not a CA certificate"):
        load_member_file(path)


def test_not_json_gives_line_and_column(tmp_path):
    path = tmp_path / "genesis.json"
    path.write_text('{"format": \n oops}')
    with pytest.raises(ConfigError, match=r"not valid JSON \(line 2, column 2\)"):
        load_genesis(path)


def test_quotas_are_read_from_the_genesis_and_default_ones_keep_the_chain_id(member_dirs, tmp_path):
    genesis, path = write_genesis(member_dirs, tmp_path)
    document = json.loads(path.read_text())
    assert "quotas" not in document  # a genesis from before quotas reads the same
    assert not genesis.to_proto().HasField("quotas")
    del document["chain_id"]
    document["quotas"] = {"user_window_blocks": 10, "user_bytes_per_window": 65536}
    path.write_text(json.dumps(document))
    custom = load_genesis(path)
    assert custom.quotas == QuotaParams(user_window_blocks=10, user_bytes_per_window=65536)
    assert custom.chain_id != genesis.chain_id
    path.write_text(custom.to_json())
    assert load_genesis(path) == custom  # written with its quotas and its own chain id
    document["quotas"] = {"user_window_blocks": 0, "user_bursts": 1}
    path.write_text(json.dumps(document))
    with pytest.raises(ConfigError) as error:
        load_genesis(path)
    assert "quotas.user_window_blocks: must be an integer from 1 to 4294967295" in str(error.value)
    assert "quotas.user_bursts: unknown field" in str(error.value)


def test_the_default_min_test_rows_keeps_the_chain_id_and_another_changes_it(member_dirs, tmp_path):
    genesis, path = write_genesis(member_dirs, tmp_path)
    document = json.loads(path.read_text())
    assert "min_test_rows" not in document["mpc"]  # a genesis from before the field reads the same
    assert genesis.to_proto().mpc.min_test_rows == 0
    assert genesis.mpc.min_test_rows == DEFAULT_MIN_TEST_ROWS
    del document["chain_id"]
    document["mpc"]["min_test_rows"] = 50
    path.write_text(json.dumps(document))
    custom = load_genesis(path)
    assert custom.mpc.min_test_rows == 50
    assert custom.chain_id != genesis.chain_id
    path.write_text(custom.to_json())
    assert load_genesis(path) == custom
    with pytest.raises(ValueError, match="at least 1"):
        MpcParams(min_test_rows=0)  # 0 stands for the default on the wire
