"""A worker that sends one large tensor from rank 0 to rank 1 over the real relay (a script).

    python big_tensor_worker.py --manifest M --rank R --output O --socket S --megabytes N

It takes the worker's own arguments (so `RelayCluster.launch` can start it)
and uses the production link and communicator (`RelayLink`, `MpcCommunicator`:
chunking, labels, transcript) without CrypTen's programs. Both data ranks
meet at a barrier first, so the tensor is not an early frame. Its result
(JSON) holds the SHA-256 of the tensor as sent or received and the
transcript; the dealer's rank takes no part and writes an empty result.
"""

import argparse
import hashlib
import json
from pathlib import Path

import torch

from mpc_ledger.mpc.communicator import CommunicatorSetup, MpcCommunicator
from mpc_ledger.mpc.worker import _hello, load_manifest
from mpc_ledger.mpc.worker_link import RelayLink


def main():
    parser = argparse.ArgumentParser()
    for name in ("--manifest", "--output", "--socket"):
        parser.add_argument(name, type=Path, required=True)
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--megabytes", type=int, required=True)
    args = parser.parse_args()
    manifest = load_manifest(args.manifest)
    result = {"rank": args.rank}
    if args.rank < manifest.world_size:
        hello = _hello(manifest, args.rank)
        setup = CommunicatorSetup(
            job_id=manifest.job_id,
            rank=args.rank,
            world_size=manifest.world_size,
            members=manifest.members,
            link_factory=lambda: RelayLink(args.socket, hello),
            peer_timeout_s=manifest.peer_timeout_s,
        )
        communicator = MpcCommunicator(setup, init_ttp=True)
        communicator.barrier()
        elements = args.megabytes * 1024 * 1024 // 8
        if args.rank == 0:
            generator = torch.Generator().manual_seed(7)
            tensor = torch.randint(-(2**62), 2**62, (elements,), generator=generator)
            communicator.send(tensor, 1)
        else:
            tensor = communicator.recv(torch.empty(elements, dtype=torch.int64), 0)
        result["sha256"] = hashlib.sha256(tensor.numpy().tobytes()).hexdigest()
        result["transcript"] = communicator.snapshot("end").to_json()
        communicator.close()
    args.output.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
