"""Job specs: TOML in, a checked `JobSpec` out; its protobuf form; the job manifest.

Theory of operation
-------------------
A scientist writes a job spec (see ``parties/job.toml``); it is checked in
three layers, each returning *every* problem as ``field: message``:

1. `spec_from_document`: the TOML's shape (unknown keys, wrong types).
2. `spec_problems`: the values on their own (ranges, known names, the model
   and loss agree, ...). The ledger runs the same check on the `JobSpec`
   decoded from an untrusted `JobSubmission`, so a spec that passes here is
   not refused there for a reason the scientist could have been told.
3. `ledger_problems`: the spec against what the ledger knows (registered
   datasets, their schemas and row counts, the genesis's members, dealers,
   protocols and tuple providers). Pure: the registry is handed in.

`to_proto`/`from_proto` are exact inverses (the record carries the proto;
the deterministic encoding is what is signed and hashed).

Modules, one layer each; this package re-exports their public names:

- `model`: the names and limits, `JobSpec` and its protobuf form, `split_rows`;
- `reading`: TOML in, layers 1 and 2 (`spec_from_document`, `load_job_spec`);
- `value_checks`: layer 2 (`spec_problems`);
- `ledger_checks`: layer 3 (`ledger_problems`, `resolve_dealer`, `job_test_rows`).

What every participant agrees on before training is the job's manifest
(`mpc_ledger.jobs.manifest`), built from a spec that passes all three.

Rows are split the same way everywhere: of ``n`` rows, the last
``floor(n * test_fraction)`` are the test set. Vertical datasets are
aligned by a private set intersection of their id columns by default
(``alignment = "psi"``, `mpc_ledger.mpc.psi`): each dataset names its id
column (``[[datasets]] id_column``, else the one it was registered with);
the parties learn the intersection, and the job trains on it, in an order
no party chose, split as above. ``alignment = "row-order"`` instead says
that row i of every dataset is the same entity, which each owner states by
approving; the datasets must then have the same row count. Horizontal jobs
have nothing to align ("row-order").

Preprocessing fields, encoded so that a proto without them (an old record)
means what jobs did before they existed and hashes as it did: TOML
``shuffle`` (default true) is ``batch_order`` "shuffled", false is ""
(rank order); TOML ``standardisation`` is, for a horizontal job, "pooled"
(the default) or "per-party" (""), and for a vertical job "per-owner" ("",
the only choice). `spec_problems` refuses any other encoding.

The training program's cost fields, likewise: TOML ``sigmoid`` (a bce job's
training sigmoid) is "piecewise" by default (one comparison's round trips a
step) or "exact" ("": CrypTen's own, as jobs did before); TOML
``gradient_threshold`` is 0 (no guard) by default, where a proto without the
field means CrypTen's 100 (`JobSpec.effective_gradient_threshold`).
"""

from __future__ import annotations

from mpc_ledger.jobs.spec.ledger_checks import job_test_rows, ledger_problems, resolve_dealer
from mpc_ledger.jobs.spec.model import (
    ALIGNMENTS,
    BATCH_ORDERS,
    DEFAULT_LOSS,
    DEFAULT_PROTOCOL,
    ID_TYPES,
    LAYOUTS,
    LOSSES,
    MODEL_KINDS,
    OPTIMISERS,
    SIGMOIDS,
    STANDARDISATIONS,
    TUPLE_PROVIDERS,
    JobDatasetRef,
    JobSpec,
    JobSpecError,
    ModelSpec,
    OptimiserSpec,
    id_column_of,
    split_rows,
)
from mpc_ledger.jobs.spec.reading import load_job_spec, parse_job_spec, spec_from_document
from mpc_ledger.jobs.spec.value_checks import spec_problems

__all__ = [
    "ALIGNMENTS",
    "BATCH_ORDERS",
    "DEFAULT_LOSS",
    "DEFAULT_PROTOCOL",
    "ID_TYPES",
    "LAYOUTS",
    "LOSSES",
    "MODEL_KINDS",
    "OPTIMISERS",
    "SIGMOIDS",
    "STANDARDISATIONS",
    "TUPLE_PROVIDERS",
    "JobDatasetRef",
    "JobSpec",
    "JobSpecError",
    "ModelSpec",
    "OptimiserSpec",
    "id_column_of",
    "job_test_rows",
    "ledger_problems",
    "load_job_spec",
    "parse_job_spec",
    "resolve_dealer",
    "spec_from_document",
    "spec_problems",
    "split_rows",
]
