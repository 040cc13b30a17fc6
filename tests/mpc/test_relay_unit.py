"""The relay's checks that need no processes: hellos, the socket path, its folder."""

from __future__ import annotations

import os

import pytest

from mpc_ledger.mpc.relay import RelayError, _prepare_socket_path, check_hello
from mpc_ledger.proto.v1 import mpc_pb2
from mpc_ledger.testing.consortium import make_consortium


@pytest.fixture(scope="module")
def genesis(tmp_path_factory):
    return make_consortium(tmp_path_factory.mktemp("g") / "c", "a,b", "--dealer").genesis


def hello(rank=0, members=("a", "b", "dealer"), provider="dealer", job_id="job-1"):
    ranks = [mpc_pb2.RankMember(rank=r, member_id=m) for r, m in enumerate(members)]
    return mpc_pb2.WorkerHello(job_id=job_id, rank=rank, ranks=ranks, tuple_provider=provider)


def test_a_good_hello_passes(genesis):
    assert check_hello(genesis, "a", hello()) is None
    assert check_hello(genesis, "dealer", hello(rank=2)) is None


@pytest.mark.parametrize(
    ("kwargs", "member", "reason"),
    [
        ({"job_id": "../x"}, "a", "job id"),
        ({"members": ("a",)}, "a", "ranks must be 0..n-1 with n >= 2"),
        ({"members": ("a", "zed", "dealer")}, "a", "'zed', not a genesis member"),
        ({}, "b", "rank 0 is not held by this member ('b')"),
        ({"provider": "trusted-first-party"}, "a", "not allowed by the genesis"),
        ({"provider": "magic"}, "a", "is not one of"),
        ({"members": ("a", "b", "b")}, "a", "must be held by a member with the dealer role"),
    ],
)
def test_bad_hellos_are_refused_with_a_reason(genesis, kwargs, member, reason):
    problem = check_hello(genesis, member, hello(**kwargs))
    assert problem is not None and reason in problem


def test_socket_path_too_long_for_af_unix_is_refused(tmp_path):
    with pytest.raises(RelayError, match="at most 107"):
        _prepare_socket_path(tmp_path / ("d" * 120) / "mpc.sock")


def test_socket_folder_open_to_others_is_refused(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    with pytest.raises(RelayError, match="open to other users"):
        _prepare_socket_path(folder / "mpc.sock")
    os.chmod(folder, 0o700)
    assert _prepare_socket_path(folder / "mpc.sock") == folder / "mpc.sock"
    (folder / "mpc.sock").write_text("not a socket")
    with pytest.raises(RelayError, match="not a socket"):
        _prepare_socket_path(folder / "mpc.sock")
