"""mpc-ledger: joint model training across organisations on secret shares,
recorded on a BFT ledger that the parties run themselves."""

__all__ = ["__version__"]

__version__ = "0.1.0"
