"""The ledger: records, block store, Merkle log and sync (see DESIGN.md, "Ledger")."""
