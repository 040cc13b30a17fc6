"""The `mpc-ledger` command: one module per user group."""
