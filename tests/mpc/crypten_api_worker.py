"""CrypTen's own API, called as CrypTen documents it, over the real relay (a script).

    python crypten_api_worker.py --manifest M --rank R --output O --socket S

It takes the worker's own arguments (so `RelayCluster.launch` can start it
at the data ranks; the dealer's rank runs the real worker) and sets CrypTen
up as the worker does (`worker._setup_relay`: the production communicator
and link). Both data ranks then make the same calls twice, first with
CrypTen's ``communicator.verbose`` off, then on: ``crypten.load_from_party``
of a tensor, ``broadcast_obj`` of a dict holding tensors and a uint64, and
``send_obj``/``recv_obj`` of a generator seed of 2**63 or more. After each
pass it notes CrypTen's statistics, the communicator's own
(``transport_stats``) and a transcript snapshot; then what
``crypten.print_communication_stats`` logs and what a reset leaves. The
result (JSON) holds what every call returned, for the test to check.
"""

import argparse
import json
import logging
import sys
import traceback
from pathlib import Path

import torch

from mpc_ledger.mpc.communicator import MpcCommunicator
from mpc_ledger.mpc.worker import Recording, _link_factory, _setup_relay, load_manifest

FEATURES = torch.tensor([[1.5, -2.0, 3.25], [0.0, 4.0, -1.0]])
SEED = torch.Generator().manual_seed(2**63 + 2**40 + 17).initial_seed()
PAYLOAD = {
    "weights": torch.arange(6, dtype=torch.float64).reshape(2, 3),
    "mask": torch.tensor([True, False, True]),
    "empty": torch.zeros(0, 2, dtype=torch.int64),
    "step": torch.tensor(7, dtype=torch.int32),
    "seed": 2**64 - 1,
}


def described(value):
    """A JSON view of a received value: tensors as dtype, shape and values."""
    if isinstance(value, torch.Tensor):
        return {"dtype": str(value.dtype), "shape": list(value.shape), "values": value.tolist()}
    if isinstance(value, dict):
        return {key: described(item) for key, item in value.items()}
    return value


def api_calls(crypten, comm, rank):
    """The calls a scientist makes from CrypTen's docs; what each gave this rank."""
    loaded = crypten.load_from_party(preloaded=FEATURES if rank == 0 else None, src=0)
    payload = comm.broadcast_obj(PAYLOAD if rank == 0 else None, 0)
    if rank == 0:
        comm.send_obj(SEED, 1)
        seed = SEED
    else:
        seed = comm.recv_obj(0)
    return {
        "loaded_type": type(loaded).__name__,
        "loaded": loaded.get_plain_text().tolist(),
        "payload": described(payload),
        "seed": seed,
    }


def observed(crypten, comm, label):
    return {
        "crypten": comm.get_communication_stats(),
        "ours": comm.transport_stats(),
        "transcript": comm.snapshot(label).to_json(),
    }


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def run(crypten, comm, rank):
    result = {"rank": rank, "init": observed(crypten, comm, "init")}
    result["quiet"] = api_calls(crypten, comm, rank)
    result["after_quiet"] = observed(crypten, comm, "quiet")
    with crypten.cfg.temp_override({"communicator.verbose": True}):
        result["verbose"] = api_calls(crypten, comm, rank)
    result["after_verbose"] = observed(crypten, comm, "verbose")
    lines = Lines()
    root = logging.getLogger()
    root.addHandler(lines)
    root.setLevel(logging.INFO)
    crypten.print_communication_stats()
    root.removeHandler(lines)
    result["printed"] = lines.lines
    crypten.reset_communication_stats()
    result["after_reset"] = observed(crypten, comm, "reset")
    return result


def main():
    parser = argparse.ArgumentParser()
    for name in ("--manifest", "--output", "--socket"):
        parser.add_argument(name, type=Path, required=True)
    parser.add_argument("--rank", type=int, required=True)
    args = parser.parse_args()
    manifest = load_manifest(args.manifest)
    links = _link_factory(manifest, args.rank, args.socket, Recording())
    crypten = _setup_relay(manifest, args.rank, links, MpcCommunicator, {})
    crypten.init()
    comm = crypten.communicator.get()
    try:
        result = run(crypten, comm, args.rank)
        comm.release_dealer()
        result["transcript"] = comm.snapshot("job-end").to_json()
        crypten.uninit()
    except Exception as exc:
        comm.close(abort_reason=f"{type(exc).__name__}: {exc}")
        args.output.write_text(json.dumps({"error": traceback.format_exc()}))
        return 1
    args.output.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
