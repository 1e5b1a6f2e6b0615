"""Linear audio mixing at 48 kHz mono float32 with a soft limiter (numpy only).

Sources are summed sample by sample (no normalisation, like amix normalize=0). When a block's sum would clip
(|x| > 1), samples above the knee (-1 dBFS) are compressed with a tanh curve that is continuous in value and
slope at the knee and never exceeds full scale; blocks that do not clip pass through untouched. Gaps are
silence.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float32]
KNEE = np.float32(10 ** (-1 / 20))


def soft_limit(block: Samples) -> Samples:
    """Limit a block in place when any sample would clip; returns the block."""
    peak = float(np.max(np.abs(block))) if block.size else 0.0
    if peak <= 1.0:
        return block
    magnitude = np.abs(block)
    over = magnitude > KNEE
    headroom = np.float32(1.0) - KNEE
    limited = KNEE + headroom * np.tanh((magnitude[over] - KNEE) / headroom)
    block[over] = np.sign(block[over]) * limited.astype(np.float32)
    return block


class _Source:
    __slots__ = ("iterator", "pending")

    def __init__(self, iterator: Iterator[tuple[int, Samples]]) -> None:
        self.iterator = iterator
        self.pending: tuple[int, Samples] | None = None


def mix(sources: list[Iterator[tuple[int, Samples]]], total: int, block: int = 48000) -> Iterator[Samples]:
    """Stream the mix of positioned sample blocks over [0, total) in blocks of `block` samples.

    Each source yields (position, samples) with non-decreasing positions; samples outside [0, total) are
    dropped. Memory is one block plus one pending chunk per source."""
    states = [_Source(it) for it in sources]
    for start in range(0, total, block):
        end = min(start + block, total)
        out = np.zeros(end - start, np.float32)
        for state in states:
            while True:
                if state.pending is None:
                    state.pending = next(state.iterator, None)
                    if state.pending is None:
                        break
                position, samples = state.pending
                chunk_end = position + samples.shape[0]
                lo, hi = max(position, start), min(chunk_end, end)
                if lo < hi:
                    out[lo - start : hi - start] += samples[lo - position : hi - position]
                if chunk_end <= end:
                    state.pending = None  # consumed
                    continue
                break  # the rest belongs to later blocks
        yield soft_limit(out)
