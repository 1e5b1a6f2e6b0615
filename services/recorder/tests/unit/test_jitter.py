import random

from services.recorder.jitter import Loss, ReorderBuffer
from services.recorder.rtp import RtpPacket


def pkt(seq: int) -> RtpPacket:
    return RtpPacket(96, False, seq & 0xFFFF, seq * 960, 1, seq.to_bytes(4, "big"))


def run(buf: ReorderBuffer, seqs: list[int]) -> list[int | str]:
    out: list[int | str] = []
    for s in seqs:
        for item in buf.push(pkt(s)):
            out.append(f"loss{item.count}" if isinstance(item, Loss) else int.from_bytes(item.payload, "big"))
    for item in buf.flush():
        out.append(f"loss{item.count}" if isinstance(item, Loss) else int.from_bytes(item.payload, "big"))
    return out


def test_in_order_passes_through_immediately() -> None:
    buf = ReorderBuffer(8)
    assert [int.from_bytes(p.payload, "big") for p in buf.push(pkt(5))] == [5]  # type: ignore[union-attr]
    assert run(buf, [6, 7]) == [6, 7]


def test_shuffled_within_capacity_comes_out_sorted() -> None:
    rng = random.Random(7)
    seqs = list(range(1000, 1300))
    # Local shuffles (windows of 10) like network reordering.
    shuffled: list[int] = []
    for i in range(0, len(seqs), 10):
        window = seqs[i : i + 10]
        rng.shuffle(window)
        shuffled += window
    # Keep the first packet first so the buffer starts at the right sequence number.
    shuffled.remove(1000)
    shuffled.insert(0, 1000)
    buf = ReorderBuffer(32)
    assert run(buf, shuffled) == seqs
    assert buf.stats.reordered > 0
    assert buf.stats.lost == 0


def test_duplicates_and_late_packets_are_dropped() -> None:
    buf = ReorderBuffer(16)
    # 3 is a duplicate while buffered; the second 2 and the late 1 arrive after release.
    assert run(buf, [1, 3, 3, 2, 2, 1, 4]) == [1, 2, 3, 4]
    assert buf.stats.duplicates == 1
    assert buf.stats.late == 2


def test_wrap_at_65535() -> None:
    buf = ReorderBuffer(16)
    seqs = [65530, 65531, 65533, 65532, 65534, 65535, 65536, 65538, 65537, 65539]
    assert run(buf, seqs) == sorted(seqs)


def test_hole_older_than_capacity_is_declared_lost() -> None:
    buf = ReorderBuffer(4)
    out = run(buf, [10, 11, 13, 14, 15, 16, 17, 18])
    assert out == [10, 11, "loss1", 13, 14, 15, 16, 17, 18]
    assert buf.stats.lost == 1
    # The packet arriving after the loss was declared is late, not delivered.
    assert buf.push(pkt(12)) == []
    assert buf.stats.late == 1


def test_hole_waits_while_within_capacity() -> None:
    buf = ReorderBuffer(4)
    assert buf.push(pkt(1)) != []
    assert buf.push(pkt(3)) == []
    assert buf.push(pkt(4)) == []
    released = buf.push(pkt(2))
    assert [int.from_bytes(p.payload, "big") for p in released if not isinstance(p, Loss)] == [2, 3, 4]


def test_flush_reports_trailing_holes() -> None:
    buf = ReorderBuffer(10)
    assert run(buf, [1, 3, 6]) == [1, "loss1", 3, "loss2", 6]


def test_big_jump_resyncs_without_waiting() -> None:
    buf = ReorderBuffer(8)
    out = run(buf, [100, 101, 5000, 5001])
    assert out == [100, 101, "loss4898", 5000, 5001]
