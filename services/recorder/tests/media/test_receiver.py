"""Port allocation and socket setup on 127.0.0.1 (binds real sockets, hence not a pure unit test)."""

from __future__ import annotations

import socket

import pytest

from services.recorder.errors import PortsExhaustedError
from services.recorder.receiver import PortAllocator, open_udp_socket

pytestmark = pytest.mark.media


def ports_of(socks: list[socket.socket]) -> list[int]:
    return [s.getsockname()[1] for s in socks]


def test_pairs_start_even_and_skip_busy_ports() -> None:
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 34100))
    alloc = PortAllocator("127.0.0.1", 34100, 34107)
    try:
        first = alloc.allocate(2)
        assert ports_of(first) == [34102, 34103]  # 34100 is taken by someone else
        single = alloc.allocate(1)
        assert ports_of(single) == [34104]
        second = alloc.allocate(2)
        assert ports_of(second) == [34106, 34107]
        assert alloc.in_use == 5
        with pytest.raises(PortsExhaustedError):
            alloc.allocate(2)
        alloc.release(ports_of(first))
        for s in first:
            s.close()
        again = alloc.allocate(2)
        assert ports_of(again) == [34102, 34103]
        for s in again + single + second:
            s.close()
    finally:
        busy.close()


def test_receive_buffer_is_raised() -> None:
    sock = open_udp_socket("127.0.0.1", 0, rcvbuf=2 * 1024 * 1024)
    try:
        # Linux doubles the requested value (bookkeeping); anything above the 212992 default shows it took.
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) > 212_992
        assert not sock.getblocking()
    finally:
        sock.close()
