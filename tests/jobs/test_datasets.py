"""Datasets: canonical encoding, fingerprints from CSV and Parquet, errors that say where."""

from __future__ import annotations

import math
import struct

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mpc_ledger.errors import ConfigError, UserError
from mpc_ledger.jobs.datafiles import (
    DataFileError,
    fingerprint_file,
    load_schema,
    parse_columns,
    read_rows,
)
from mpc_ledger.jobs.datasets import (
    Column,
    DatasetSchema,
    FingerprintBuilder,
    dataset_fingerprint,
    encode_row,
    registration_problems,
    schema_problems,
)
from mpc_ledger.merkle import merkle_root

from .conftest import COHORT, PARTIES, registration

CSV_TEXT = (
    "patient_id,age,bmi,readmitted\n"
    "p1,34,22.5,true\n"
    "p2,-7,1e3,0\n"
    "p3,0,-0.0,FALSE\n"
    '"p,4",9223372036854775807,nan,1\n'
)
ROWS = [
    ("p1", 34, 22.5, True),
    ("p2", -7, 1000.0, False),
    ("p3", 0, -0.0, False),
    ("p,4", 2**63 - 1, math.nan, True),
]


def write_parquet(path, columns, schema=None):
    pq.write_table(pa.table(columns, schema=schema), path)


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text(CSV_TEXT)
    return path


@pytest.fixture
def parquet_file(tmp_path):
    path = tmp_path / "cohort.parquet"
    # Another column order, narrower types and a NaN with a payload: same values.
    nan_with_payload = struct.unpack(">d", bytes.fromhex("7ff8000000000123"))[0]
    write_parquet(
        path,
        {
            "readmitted": [True, False, False, True],
            "bmi": [22.5, 1000.0, -0.0, nan_with_payload],
            "age": pa.array([34, -7, 0, 2**63 - 1], pa.int64()),
            "patient_id": ["p1", "p2", "p3", "p,4"],
        },
    )
    return path


def test_row_encoding_is_typed_and_length_prefixed():
    schema = DatasetSchema((Column("s", "string"), Column("i", "int64", True)))
    assert encode_row(schema, ("ab", None)) == (
        b"\x00\x00\x00\x02" + b"\x03\x00\x00\x00\x02ab" + b"\x00\x00\x00\x00\x00"
    )
    assert encode_row(schema, ("", -1))[-9:] == b"\x08" + b"\xff" * 8
    floats = DatasetSchema((Column("f", "float64"),))
    nan_a = encode_row(floats, (math.nan,))
    nan_b = encode_row(floats, (struct.unpack(">d", bytes.fromhex("fff0000000000001"))[0],))
    assert nan_a == nan_b  # every NaN is the one canonical NaN
    assert encode_row(floats, (0.0,)) != encode_row(floats, (-0.0,))


def test_csv_reads_typed_rows(csv_file):
    rows = list(read_rows(csv_file, COHORT))
    assert rows[:3] == ROWS[:3] and rows[3][:2] == ROWS[3][:2]
    assert math.isnan(rows[3][2]) and rows[3][3] is True
    assert math.copysign(1, rows[2][2]) == -1


def test_fingerprint_is_the_same_from_csv_and_parquet(csv_file, parquet_file):
    from_csv = fingerprint_file(csv_file, COHORT)
    from_parquet = fingerprint_file(parquet_file, COHORT)
    assert from_csv == from_parquet
    assert from_csv.row_count == 4
    expected_root = merkle_root([encode_row(COHORT, row) for row in ROWS])
    assert from_csv.rows_root == expected_root
    assert from_csv.fingerprint == dataset_fingerprint(COHORT.schema_hash, 4, expected_root)


def test_a_changed_byte_changes_the_fingerprint(csv_file, tmp_path):
    original = fingerprint_file(csv_file, COHORT)
    changed = tmp_path / "changed.csv"
    changed.write_bytes(csv_file.read_bytes().replace(b"22.5", b"22.6"))
    assert fingerprint_file(changed, COHORT).fingerprint != original.fingerprint
    reordered = tmp_path / "reordered.csv"
    lines = CSV_TEXT.splitlines(keepends=True)
    reordered.write_text(lines[0] + lines[2] + lines[1] + "".join(lines[3:]))
    assert fingerprint_file(reordered, COHORT).fingerprint != original.fingerprint


def test_the_schema_is_part_of_the_fingerprint(csv_file):
    relabelled = DatasetSchema(COHORT.columns, COHORT.id_column, label_column="")
    assert fingerprint_file(csv_file, relabelled).rows_root == (
        fingerprint_file(csv_file, COHORT).rows_root
    )
    assert fingerprint_file(csv_file, relabelled).fingerprint != (
        fingerprint_file(csv_file, COHORT).fingerprint
    )


def test_csv_errors_name_file_line_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "patient_id,age,bmi,readmitted\n"
        "p1,34,22.5,true\n"
        "p2,thirty,22.5,true\n"
        "p3,3.0,1.5.2,maybe\n"
        "p4,1\n"
        "p5,99999999999999999999,,yes\n"
    )
    with pytest.raises(DataFileError) as caught:
        list(read_rows(path, COHORT))
    message = str(caught.value)
    assert message.startswith(f"{path}: 8 problems:")
    for expected in (
        "line 3, column 'age': 'thirty' is not an int64",
        "line 4, column 'age': '3.0' is not an int64",
        "line 4, column 'bmi': '1.5.2' is not a float64",
        "line 4, column 'readmitted': 'maybe' is not a bool (true, false, 1 or 0)",
        "line 5: has 2 fields; the header has 4",
        "line 6, column 'age': 99999999999999999999 is outside the int64 range",
        "line 6, column 'bmi': empty (null) in a column that is not nullable",
    ):
        assert expected in message
    assert "line 2" not in message
    # What may reach a ledger record: the same problems, with neither the cells nor the file.
    reason = caught.value.record_reason
    assert reason.startswith("8 problems: line 3, column 'age': not an int64; ")
    assert "line 4, column 'readmitted': not a bool (true, false, 1 or 0)" in reason
    assert "line 6, column 'age': outside the int64 range" in reason
    for value in ("thirty", "3.0", "1.5.2", "maybe", "99999999999999999999", str(tmp_path)):
        assert value not in reason


def test_a_header_name_reaches_only_the_operator(tmp_path):
    """A file without its header: the first row's cells are read as column names."""
    path = tmp_path / "noheader.csv"
    path.write_text("Jane Q. Patient,34,22.5,true\n")
    with pytest.raises(DataFileError) as caught:
        fingerprint_file(path, COHORT)
    assert "'Jane Q. Patient'" in str(caught.value)
    assert caught.value.record_reason == (
        "line 1 (header): missing schema columns 'patient_id', 'age', 'bmi', 'readmitted'; "
        "4 column(s) not in the schema"
    )
    with pytest.raises(DataFileError) as caught:
        fingerprint_file(tmp_path / "missing.csv", COHORT)
    assert caught.value.record_reason == "file not found"


def test_csv_header_must_match_the_schema(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("patient_id,age,weight\np1,3,4\n")
    with pytest.raises(DataFileError) as caught:
        fingerprint_file(path, COHORT)
    assert str(caught.value) == (
        f"{path}: line 1 (header): missing schema columns 'bmi', 'readmitted'; "
        "columns not in the schema 'weight'"
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFileError, match="empty file"):
        fingerprint_file(empty, COHORT)


def test_csv_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"patient_id,age,bmi,readmitted\np\xe9,1,2,true\n")
    with pytest.raises(DataFileError, match="not UTF-8"):
        fingerprint_file(path, COHORT)


def test_nullable_columns(tmp_path):
    schema = DatasetSchema((Column("id", "string"), Column("x", "float64", nullable=True)))
    path = tmp_path / "nulls.csv"
    path.write_text("id,x\na,\nb,2\n")
    assert list(read_rows(path, schema)) == [("a", None), ("b", 2.0)]
    parquet = tmp_path / "nulls.parquet"
    write_parquet(parquet, {"id": ["a", "b"], "x": [None, 2.0]})
    assert fingerprint_file(parquet, schema) == fingerprint_file(path, schema)


def test_parquet_errors_name_row_and_column(tmp_path):
    path = tmp_path / "bad.parquet"
    write_parquet(
        path,
        {
            "patient_id": ["p1", None, "p3"],
            "age": pa.array([1, 2, 2**64 - 1], pa.uint64()),
            "bmi": [1.0, 2.0, 3.0],
            "readmitted": [True, False, None],
        },
    )
    with pytest.raises(DataFileError) as caught:
        fingerprint_file(path, COHORT)
    message = str(caught.value)
    assert "row 2, column 'patient_id': null in a column that is not nullable" in message
    assert "row 3, column 'age': 18446744073709551615 is outside the int64 range" in message
    assert "row 3, column 'readmitted': null in a column that is not nullable" in message


def test_parquet_type_must_fit_the_schema(tmp_path):
    path = tmp_path / "types.parquet"
    write_parquet(path, {"patient_id": ["p"], "age": [1.5], "bmi": [1.0], "readmitted": [True]})
    with pytest.raises(DataFileError) as caught:
        fingerprint_file(path, COHORT)
    assert str(caught.value) == (
        f"{path}: column 'age': Parquet type double cannot hold the schema's int64"
    )
    not_parquet = tmp_path / "fake.parquet"
    not_parquet.write_text("hello")
    with pytest.raises(DataFileError, match="not a readable Parquet file"):
        fingerprint_file(not_parquet, COHORT)


def test_unknown_file_type_and_missing_file(tmp_path):
    with pytest.raises(DataFileError, match=r"unknown file type '\.xlsx'"):
        fingerprint_file(tmp_path / "data.xlsx", COHORT)
    with pytest.raises(DataFileError, match="file not found"):
        fingerprint_file(tmp_path / "missing.csv", COHORT)


def test_schema_problems_are_all_reported():
    schema = DatasetSchema(
        (Column("a", "int64"), Column("a", "text"), Column("", "bool"), Column("s", "string")),
        id_column="zz",
        label_column="s",
    )
    assert schema_problems(schema) == [
        "columns[1].name: 'a' appears twice",
        "columns[1].type: 'text' is not one of int64, float64, string, bool",
        "columns[2].name: must not be empty",
        "id_column: 'zz' is not a column of the schema",
        "label_column: 's' is a string; a label must be numeric",
    ]


def test_schema_file_and_columns_option(tmp_path):
    from_file = load_schema(PARTIES / "schemas" / "hospital-a-cohort.toml")
    from_option = parse_columns(
        "patient_id:string,age:int64,bmi:float64,smoker:bool,readmitted:bool",
        id_column="patient_id",
        label_column="readmitted",
    )
    assert from_file == from_option
    assert parse_columns("x:int64?").columns == (Column("x", "int64", nullable=True),)
    with pytest.raises(UserError) as caught:
        parse_columns("x:int64,y,z:float32")
    assert str(caught.value) == "--columns: invalid:\n  columns[1]: 'y' is not name:type"
    bad = tmp_path / "schema.toml"
    bad.write_text('id_column = 3\ncolour = "red"\n[[columns]]\nname = "x"\ntype = "int"\n')
    with pytest.raises(ConfigError) as caught:
        load_schema(bad)
    assert str(caught.value) == (
        f"{bad}: invalid schema:\n  colour: unknown key; known: columns, id_column, label_column"
        "\n  id_column: must be a column name"
    )


def test_registration_problems():
    good = registration("a/cohort", COHORT, 3)
    assert registration_problems(good, "a") == []
    assert registration_problems(good, "b") == [
        "dataset_id: member 'b' may register datasets only as 'b/<name>'"
    ]
    tampered = type(good)()
    tampered.CopyFrom(good)
    tampered.row_count = 4
    assert registration_problems(tampered, "a") == [
        "fingerprint: does not match schema_hash, row_count and rows_root"
    ]
    tampered.CopyFrom(good)
    tampered.schema.columns[1].name = "years"
    assert registration_problems(tampered, "a") == ["schema_hash: does not match the schema"]
    tampered.CopyFrom(good)
    tampered.fingerprint = b"short"
    tampered.row_count = 0
    assert registration_problems(tampered, "a") == [
        "row_count: a dataset has at least one row",
        "fingerprint: must be a 32-byte SHA-256",
    ]


def test_builder_counts_rows():
    builder = FingerprintBuilder(COHORT)
    assert builder.result().row_count == 0
    builder.add(("p", 1, 1.0, True))
    assert builder.row_count == 1
