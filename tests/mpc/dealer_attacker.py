"""Party 0 asking the dealer for what no program needs, for the tests (run as a script).

    python dealer_attacker.py MODE WORKER-ARGS...

For the job's first Beaver triple, party 0 sends the dealer a request of its own
instead of CrypTen's, over the real communicator and relay:

MODE ``prss``: CrypTen's ``_get_additive_PRSS``, three times: the plaintext
masks a and b of the triple, and the other parties' share of c, from which it
makes a valid share of c itself, so the job goes on unnoticed. With mask a it
unmasks the value opened in that multiplication (epsilon = x - a) and writes
x (decoded, every party's columns of the batch) to OUTPUT.attack.json.
MODE ``oversized``: a mul triple in the dealer's schema, far larger than the job.
MODE ``unknown``: a request kind outside the schema ("_get_additive_PRSS").
MODE ``desync``: a request inside the schema that the other parties did not make:
before its first triple, a square of 4 elements. CrypTen's dealer answered it from
the same streams the others draw their triple from, so the answer is
(r0 + a1[0:4])^2 - a1[4:8], made of party 1's share a1 of the triple's mask a.
Party 0 records r0 (its own next 4 draws) and the answer, then goes on honestly.
MODE ``record`` (for rank 1, an honest party): records the first 8 elements of
its share of its first triple's a, for the test to check that relation.

Every answer the dealer gives is recorded in OUTPUT.attack.json too. The script
needs nothing of the dealer's schema module, so it runs against any version.
"""

import json
import sys
from pathlib import Path

import torch

from mpc_ledger.mpc import crypten_compat, worker

crypten = crypten_compat.import_crypten()

import crypten.communicator as comm  # noqa: E402
from crypten.common.rng import generate_random_ring_element  # noqa: E402
from crypten.mpc.primitives import ArithmeticSharedTensor  # noqa: E402
from crypten.mpc.provider.ttp_provider import TrustedThirdParty, TTPClient  # noqa: E402

SCALE = 2**16  # CrypTen's fixed-point encoding
MESSAGES = {
    "oversized": {
        "schema": "mpc-ledger/dealer-request/v1",
        "kind": "mul_triple",
        "shapes": (torch.Size([1000, 1000]), torch.Size([1000, 1000])),
    },
    "unknown": {
        "schema": "mpc-ledger/dealer-request/v1",
        "kind": "_get_additive_PRSS",
        "shapes": (torch.Size([16, 30]),),
    },
}

honest_triple = TrustedThirdParty.generate_additive_triple
honest_reveal_batch = ArithmeticSharedTensor.reveal_batch
state = {
    "mode": "",
    "report": None,
    "attacked": False,
    "mask": None,
    "answers": [],
    "stolen": None,
    "desync": None,
    "recorded": None,
}


def record():
    document = {
        "answers": state["answers"],
        "stolen": state["stolen"],
        "desync": state["desync"],
        "recorded": state["recorded"],
    }
    state["report"].write_text(json.dumps(document))


def desynchronising_triple(self, size0, size1, op, device=None, *args, **kwargs):
    generator = TTPClient.get().get_generator(device=device)
    r0 = generate_random_ring_element((4,), generator=generator)  # what the dealer draws for us
    message = {"schema": "mpc-ledger/dealer-request/v1", "kind": "square"}
    answer = ask({**message, "shapes": (torch.Size([4]),)})
    state["desync"] = {"r0": r0.tolist(), "answer": answer.tolist()}
    record()
    return honest_triple(self, size0, size1, op, device, *args, **kwargs)


def recording_triple(self, size0, size1, op, device=None, *args, **kwargs):
    a, b, c = honest_triple(self, size0, size1, op, device, *args, **kwargs)
    if state["recorded"] is None:
        state["recorded"] = a.share.flatten()[:8].tolist()
        record()
    return a, b, c


def ask(message):
    """Send ``message`` to the dealer and take its answer, as CrypTen's client does."""
    communicator, client = comm.get(), TTPClient.get()
    dealer = communicator.get_ttp_rank()
    communicator.send_obj(message, dealer, client.ttp_group)
    size = communicator.recv_obj(dealer, client.ttp_group)
    result = torch.empty(size, dtype=torch.long)
    communicator.broadcast(result, dealer, client.comm_group)
    state["answers"].append(list(size))
    record()
    return result


def prss(size, **kwargs):
    message = {"function": "_get_additive_PRSS", "device": "cpu", "args": (size,)}
    return ask({**message, "kwargs": kwargs})


def attacking_triple(self, size0, size1, op, device=None, *args, **kwargs):
    if state["mode"] == "record":
        return recording_triple(self, size0, size1, op, device, *args, **kwargs)
    if comm.get().get_rank() != 0 or state["attacked"]:
        return honest_triple(self, size0, size1, op, device, *args, **kwargs)
    state["attacked"] = True
    if state["mode"] == "desync":
        return desynchronising_triple(self, size0, size1, op, device, *args, **kwargs)
    if state["mode"] == "record":
        return recording_triple(self, size0, size1, op, device, *args, **kwargs)
    if state["mode"] != "prss":
        ask(MESSAGES[state["mode"]])
        raise SystemExit("the dealer answered a request outside its schema")
    generator = TTPClient.get().get_generator(device=device)
    a0 = generate_random_ring_element(size0, generator=generator)  # party 0's own shares,
    b0 = generate_random_ring_element(size1, generator=generator)  # kept in step
    a, b = prss(size0), prss(size1)
    c = getattr(torch, op)(a, b, *args, **kwargs)
    c0 = c - prss(c.size(), remove_rank=True)
    state["mask"] = a
    shares = [ArithmeticSharedTensor.from_shares(t, precision=0) for t in (a0, b0, c0)]
    return tuple(shares)


def spying_reveal_batch(tensor_or_list, dst=None):
    result = honest_reveal_batch(tensor_or_list, dst)
    if state["mask"] is not None and state["stolen"] is None:
        epsilon = result[0]  # x - a, opened to every party
        state["stolen"] = ((epsilon + state["mask"]).double() / SCALE).tolist()
        record()
    return result


if __name__ == "__main__":
    state["mode"] = sys.argv[1]
    argv = sys.argv[2:]
    state["report"] = Path(argv[argv.index("--output") + 1] + ".attack.json")
    TrustedThirdParty.generate_additive_triple = attacking_triple
    ArithmeticSharedTensor.reveal_batch = staticmethod(spying_reveal_batch)
    sys.exit(worker.main(argv))
