"""A worker whose communicator misbehaves, for the tests (run as a script).

    python dishonest_worker.py MODE WORKER-ARGS...

MODE ``tamper``: alters the payload of its 10th tensor frame after hashing it.
MODE ``phantom``: hashes a frame it did not send (sends the real one).
MODE ``duplicate``: sends its frame of its 3rd all_reduce to rank 1 twice, in one transmit.
MODE ``replay``: sends that frame again once rank 1 has certainly consumed it.

``tamper`` and ``phantom`` say on stderr (its log) which rank the altered frame was for,
so a test can expect exactly that channel's digests to disagree.

Why each of ``duplicate`` and ``replay`` has one outcome at rank 1 (`labels.Mailbox.offer`
says "duplicated" for a seq still buffered, "replayed" for one already consumed):

* duplicate: both copies go to the relay in one `WorkerToRelay` message, which the relay
  queues for rank 1's daemon in one synchronous loop (nothing runs between the two
  ``put_nowait``); its link drains the queue into one `PeerBatch`, which rank 1's daemon
  hands to rank 1's worker as one `RelayToWorker` delivery (`pack_by_size` splits only
  past 8 MiB; this program's frames are a few KiB). The worker offers every frame of a
  delivery before it takes any (`MpcCommunicator._accept`), so the second copy always
  finds the first still buffered.
* replay: the frame X of rank 0's k-th all_reduce carries the seq rank 1 reserves in its
  own k-th all_reduce, and rank 1's frame in that call carries the seq rank 0 reserves
  there (the labels are allocated in program order on both sides). Rank 1's all_reduce
  returns only after it consumed X, so any frame from rank 1 with a *higher* seq was sent
  after X was consumed: rank 0 resends X as soon as it takes such a frame. The relay path
  is FIFO per sender (worker socket, link queue, gRPC stream, the daemon's one loop), and
  rank 0 sends rank 1 more frames its program consumes afterwards, so rank 1 meets the
  replay before it can finish.
"""

import sys

from mpc_ledger.mpc import worker
from mpc_ledger.mpc.communicator import MpcCommunicator
from mpc_ledger.mpc.frames import CHUNK_BYTES
from mpc_ledger.proto.v1 import mpc_pb2

ALTERED = "dishonest worker: altered its frame to rank"
TARGET_RANK = 1
# The all_reduce whose frame to rank 1 is duplicated or replayed: early, so that much of
# the program (and many frames to rank 1) follows it.
ATTACKED_ALL_REDUCE = 3


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
        self.all_reduces = 0
        self.duplicating = False
        self.last_to_target = None
        self.target_seq_in_all_reduce = -1
        self.replay_frame = None
        self.replay_after_seq = -1
        self.replayed = False

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
        if self.duplicating:
            (frame,) = frames  # an all_reduce of two parties posts one frame, to rank 1
            assert frame.ByteSize() < CHUNK_BYTES, "a duplicated frame must be one chunk"
            frames = [frame, frame]
        super()._transmit(frames)
        for frame in frames:
            if frame.receiver_rank == TARGET_RANK:
                self.last_to_target = frame

    def all_reduce(self, input, op=None, batched=False):
        self.all_reduces += 1
        attacked = self.all_reduces == ATTACKED_ALL_REDUCE
        self.duplicating = attacked and self.mode == "duplicate"
        try:
            result = super().all_reduce(input, op, batched)
        finally:
            self.duplicating = False
        if attacked and self.mode == "replay":
            # Returned: rank 1's frame of this call (seq target_seq_in_all_reduce) is taken.
            self.replay_frame = self.last_to_target
            self.replay_after_seq = self.target_seq_in_all_reduce
        return result

    def _receive_tensors(self, src, seq, like, *, operation):
        if operation == "all_reduce" and src == TARGET_RANK:
            self.target_seq_in_all_reduce = seq
        return super()._receive_tensors(src, seq, like, operation=operation)

    def _consume(self, src, seq, kind, operation):
        frame = super()._consume(src, seq, kind, operation)
        armed = self.replay_frame is not None and not self.replayed
        if armed and src == TARGET_RANK and seq > self.replay_after_seq:
            # Rank 1 sent this after its attacked all_reduce returned: it consumed the frame.
            self.replayed = True
            super()._transmit([self.replay_frame])
        return frame

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
