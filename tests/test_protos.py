"""The checked-in generated code must be exactly what scripts/gen_protos.py makes from protos/."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_protos", ROOT / "scripts" / "gen_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_code_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_notices_a_changed_byte(tmp_path):
    generator = load_generator()
    fresh = tmp_path / "proto"
    generator.generate(fresh)
    assert generator._differences(fresh, generator.OUT_PACKAGE) == []
    target = fresh / "v1" / "party_pb2.py"
    data = bytearray(target.read_bytes())
    data[-2] ^= 0x01
    target.write_bytes(bytes(data))
    assert generator._differences(fresh, generator.OUT_PACKAGE) == ["v1/party_pb2.py"]


def test_check_notices_a_missing_file(tmp_path):
    generator = load_generator()
    fresh = tmp_path / "proto"
    generator.generate(fresh)
    (fresh / "v1" / "party_pb2.pyi").unlink()
    assert "v1/party_pb2.pyi" in generator._differences(fresh, generator.OUT_PACKAGE)


def test_generated_modules_import_under_the_package():
    from mpc_ledger.proto.v1 import identity_pb2, party_pb2, party_pb2_grpc

    assert party_pb2.DESCRIPTOR.package == "mpc_ledger.v1"
    assert identity_pb2.Genesis.DESCRIPTOR.full_name == "mpc_ledger.v1.Genesis"
    assert hasattr(party_pb2_grpc, "PartyControlStub")
