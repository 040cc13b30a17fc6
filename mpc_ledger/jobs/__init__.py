"""Joint training jobs: datasets, job specs, policies, and their ledger rules (DESIGN.md "Jobs").

Modules:

* `datasets`: dataset schemas, the canonical row encoding, fingerprints,
  registrations (pure).
* `datafiles`: reading CSV and Parquet files and schema files into typed
  rows and fingerprints (the I/O shell around `datasets`).
* `spec`: the job spec (TOML in, checked `JobSpec`, proto) and its checks
  against the ledger.
* `manifest`: the job manifest every participant agrees on (ranks, rows,
  features) and its hash.
* `policy`: a data owner's policy and its evaluation of a job.
* `rules`: the ledger rules for every dataset and job record kind
  (`rules.JOB_RULES`, which `mpc_ledger.rulebook` merges with the ledger's
  own into the rulebook a `LedgerState` is built with).
* `runner`: the job runner in a party daemon, a coordinator over
  `reconcile` (what this member owes a job, pure), `approval` (its policy's
  decision), `job_run` (one job's steps), `worker_process` (the worker's
  process and events), `ledger_writes` (the records), `data_check`,
  `job_folder` and `progress`.
* `api` and `handlers`: the `Jobs` gRPC service, thin, and what it does.

Importing this package has no effect on the ledger: its rules are data that
whoever builds a `LedgerState` passes in.
"""

from mpc_ledger.jobs import rules as rules

__all__ = ["rules"]
