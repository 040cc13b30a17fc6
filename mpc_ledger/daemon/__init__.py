"""The party daemon: wires identity, ledger, MPC and jobs into one process."""
