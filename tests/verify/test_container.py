"""Bad files are bad input: exit 2, one line naming the file; never a traceback."""

from __future__ import annotations

import struct

import pytest

from mpc_ledger.proto.v1 import export_pb2
from mpc_ledger.verify import ExportFormatError, verify_export
from mpc_ledger.verify.container import EXPORT_MAGIC, FRAME_MAX_BYTES, ExportReader

from .conftest import export_chain, run_cli_inprocess, standard_chain, write_raw_export


@pytest.fixture
def good_export(consortium, builder, tmp_path):
    standard_chain(builder)
    return export_chain(consortium, builder, tmp_path / "good.export")


def _refused(path, genesis) -> str:
    with pytest.raises(ExportFormatError) as caught:
        verify_export(path, genesis)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_truncated_in_the_middle_of_a_frame(consortium, good_export, tmp_path):
    data = good_export.read_bytes()
    cut = tmp_path / "cut.export"
    cut.write_bytes(data[: len(data) // 2])
    message = _refused(cut, consortium.genesis)
    assert "truncated: frame" in message and "needs" in message


def test_truncated_at_a_frame_boundary(consortium, good_export, tmp_path):
    data = good_export.read_bytes()
    trailer_size = len(
        export_pb2.ExportFrame(
            trailer=export_pb2.ExportTrailer(
                block_count=6, record_count=10, log_size=10, log_root=bytes(32)
            )
        ).SerializeToString()
    )
    cut = tmp_path / "cut.export"
    cut.write_bytes(data[: len(data) - 4 - trailer_size])
    message = _refused(cut, consortium.genesis)
    assert "truncated: the file ends after 6 blocks, without the export trailer" in message


def test_a_format_version_we_do_not_know(consortium, builder, tmp_path):
    standard_chain(builder)
    path = write_raw_export(
        consortium, tmp_path / "v2.export", builder.blocks, format="mpc-ledger/export/v2"
    )
    message = _refused(path, consortium.genesis)
    assert "export format 'mpc-ledger/export/v2' is not supported" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not an mpc-ledger export file"),
        (b"PK\x03\x04 a zip file", "not an mpc-ledger export file"),
        (EXPORT_MAGIC, "the file ends before the export header"),
        (EXPORT_MAGIC + b"\x00\x00", "has no length"),
        (EXPORT_MAGIC + struct.pack(">I", FRAME_MAX_BYTES + 1), "the limit is"),
        (EXPORT_MAGIC + struct.pack(">I", 3) + b"\xff\xff\xff", "is not an export frame"),
    ],
)
def test_not_an_export(consortium, tmp_path, content, expected):
    path = tmp_path / "junk"
    path.write_bytes(content)
    assert expected in _refused(path, consortium.genesis)


def test_data_after_the_trailer(consortium, good_export, tmp_path):
    path = tmp_path / "long.export"
    path.write_bytes(good_export.read_bytes() + struct.pack(">I", 0))
    assert "data after the export trailer" in _refused(path, consortium.genesis)


def test_a_missing_file(consortium, tmp_path):
    assert "file not found" in _refused(tmp_path / "nothing", consortium.genesis)


def test_reader_streams_blocks_then_trailer(good_export):
    with ExportReader(good_export) as reader:
        assert reader.header.from_height == 1 and reader.header.to_height == 6
        heights = [b.block.header.height for b in reader.blocks()]
        assert heights == [1, 2, 3, 4, 5, 6]
        assert reader.trailer.block_count == 6 and reader.trailer.log_size == 10


def test_cli_bad_file_exits_2_with_one_line(consortium, good_export, tmp_path, capsys):
    cut = tmp_path / "cut.export"
    cut.write_bytes(good_export.read_bytes()[:-7])
    code = run_cli_inprocess("verify", cut, "--genesis", consortium.genesis_path)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and str(cut) in err and "Traceback" not in err


def test_export_leaves_nothing_behind_on_failure(consortium, builder, tmp_path):
    from mpc_ledger.verify.export import ExportError, write_export

    standard_chain(builder)
    with pytest.raises(ExportError, match="served blocks up to 6, not 9"):
        write_export(
            tmp_path / "x.export",
            builder.blocks,
            genesis_json=b"{}",
            chain_id=builder.chain_id,
            from_height=1,
            to_height=9,
            exporter_id="a",
            created_ms=0,
        )
    assert list(tmp_path.iterdir()) == []
