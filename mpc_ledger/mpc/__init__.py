"""CrypTen integration: compatibility, transport, transcript digests, dealer, the programs.

The programs a worker runs (`mpc_ledger.mpc.worker`; a job manifest names one):
``"train"`` is `mpc_ledger.mpc.training.run_training` on a `TrainSpec`
(`mpc_ledger.mpc.train_spec`), ``"conformance"`` is
`mpc_ledger.mpc.conformance.run_conformance`. Beside them,
`mpc_ledger.mpc.plaintext` is the plaintext reference an MPC result is compared
to, and `mpc_ledger.mpc.sample_data` the breast-cancer sample data and one
party's cut of it.
"""
