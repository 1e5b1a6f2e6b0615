"""The output canvas as YUV 4:2:0 planes and the pasting of scaled tiles into it (numpy only).

Limited-range black is Y=16, U=V=128. Rectangles are even-aligned (layout guarantees it), so a tile's chroma
lands exactly on rect // 2. Painting is deterministic: callers paint in z order, later tiles on top.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from services.compositor.layout import Rect

BLACK_Y = 16
BLACK_C = 128

Plane = npt.NDArray[np.uint8]


class Canvas:
    """Y, U and V plane views of one output picture (the encoder's own picture, so nothing is copied)."""

    def __init__(self, y: Plane, u: Plane, v: Plane) -> None:
        height, width = y.shape
        if width % 2 or height % 2 or u.shape != (height // 2, width // 2) or v.shape != u.shape:
            raise ValueError("canvas planes must be yuv420p with even sides")
        self.width = width
        self.height = height
        self.y, self.u, self.v = y, u, v
        self.clear()

    @classmethod
    def allocate(cls, width: int, height: int) -> Canvas:
        """A canvas over freshly allocated planes."""
        return cls(
            np.empty((height, width), np.uint8),
            np.empty((height // 2, width // 2), np.uint8),
            np.empty((height // 2, width // 2), np.uint8),
        )

    def clear(self) -> None:
        """Paint the whole canvas black."""
        self.y.fill(BLACK_Y)
        self.u.fill(BLACK_C)
        self.v.fill(BLACK_C)

    def fill(self, rect: Rect, y: int = BLACK_Y, u: int = BLACK_C, v: int = BLACK_C) -> None:
        """Paint a rectangle a solid colour (black by default)."""
        self.y[rect.y : rect.bottom, rect.x : rect.right] = y
        cy, cx = rect.y // 2, rect.x // 2
        self.u[cy : cy + rect.height // 2, cx : cx + rect.width // 2] = u
        self.v[cy : cy + rect.height // 2, cx : cx + rect.width // 2] = v

    def paste(self, rect: Rect, y: Plane, u: Plane, v: Plane) -> None:
        """Copy planes already scaled to rect's size into rect."""
        self.y[rect.y : rect.bottom, rect.x : rect.right] = y
        cy, cx = rect.y // 2, rect.x // 2
        self.u[cy : cy + rect.height // 2, cx : cx + rect.width // 2] = u
        self.v[cy : cy + rect.height // 2, cx : cx + rect.width // 2] = v

    def paint_tile(self, cell: Rect, content: Rect | None, planes: tuple[Plane, Plane, Plane] | None) -> None:
        """Paint one cell: black bars around the content (letterbox), or all black without content."""
        if content is None or planes is None:
            self.fill(cell)
            return
        if content != cell:
            # only the bars: top/bottom strips, then left/right strips
            if content.y > cell.y:
                self.fill(Rect(cell.x, cell.y, cell.width, content.y - cell.y))
            if content.bottom < cell.bottom:
                self.fill(Rect(cell.x, content.bottom, cell.width, cell.bottom - content.bottom))
            if content.x > cell.x:
                self.fill(Rect(cell.x, content.y, content.x - cell.x, content.height))
            if content.right < cell.right:
                self.fill(Rect(content.right, content.y, cell.right - content.right, content.height))
        self.paste(content, *planes)
