"""A worker whose communicator misbehaves, for the tests (run as a script).

    python dishonest_worker.py MODE WORKER-ARGS...

MODE ``tamper``: alters the payload of its 10th tensor frame after hashing it.
MODE ``phantom``: hashes a frame it did not send (sends the real one).
MODE ``replay``: sends its 3rd frame again after its 8th.

``tamper`` and ``phantom`` say on stderr (its log) which rank the altered frame was for,
so a test can expect exactly that channel's digests to disagree.
"""

import sys

from mpc_ledger.mpc import worker
from mpc_ledger.mpc.communicator import MpcCommunicator
from mpc_ledger.proto.v1 import mpc_pb2

ALTERED = "dishonest worker: altered its frame to rank"


def altered(frame):
    copy = mpc_pb2.MpcFrame()
    copy.CopyFrom(frame)
    data = bytearray(copy.data)
    data[0] ^= 0x01
    copy.data = bytes(data)
    return copy


class Dishonest(MpcCommunicator):
    mode = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tensor_frames = 0
        self.sent = []

    def _post(self, frames):
        if self.mode == "phantom":
            recorded = [self._maybe_alter(f) for f in frames]
            for frame in recorded:
                self.transcript.record(frame)
            self._transmit(frames)
            return
        super()._post(frames)

    def _transmit(self, frames):
        if self.mode == "tamper":
            frames = [self._maybe_alter(f) for f in frames]
        super()._transmit(frames)
        if self.mode == "replay":
            self.sent.extend(frames)
            if len(self.sent) == 8:
                super()._transmit([self.sent[2]])

    def _maybe_alter(self, frame):
        if frame.kind != mpc_pb2.FRAME_KIND_TENSORS or len(frame.data) < 8:
            return frame
        self.tensor_frames += 1
        if self.tensor_frames != 10:
            return frame
        print(f"{ALTERED} {frame.receiver_rank}", file=sys.stderr, flush=True)
        return altered(frame)


if __name__ == "__main__":
    Dishonest.mode = sys.argv[1]
    sys.exit(worker.main(sys.argv[2:], communicator_class=Dishonest))
