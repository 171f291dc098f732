"""The tray icon's pictures, drawn with Pillow for each state at each size.

Shapes are laid out on a 16-unit grid and every straight edge is snapped to a whole
pixel of the target size before drawing, so bars and borders stay sharp at 16, 24 and
32 px; curves are drawn four times larger and reduced, which smooths them without
blurring the straight edges. Each state has its own colour and its own shape, so the
icon reads without colour vision too.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw

from agent.tray.state import TrayState

#: The size the layout is given in.
GRID = 16

#: How much larger curves are drawn before the reduction to the target size.
SUPERSAMPLE = 4

#: The sizes the icon is designed for (tray icons at 100, 150 and 200 % scaling).
SIZES = (16, 24, 32)

Colour = tuple[int, int, int]

#: The background colour of each state.
COLOURS: dict[TrayState, Colour] = {
    TrayState.OK: (34, 139, 58),
    TrayState.SYNCING: (25, 103, 210),
    TrayState.PAUSED: (105, 112, 122),
    TrayState.ATTENTION: (206, 44, 44),
    TrayState.NOT_SET_UP: (128, 78, 214),
}

#: The colour of the symbol on the background.
GLYPH: Colour = (255, 255, 255)

TRANSPARENT = (0, 0, 0, 0)


class Canvas:
    """A supersampled drawing surface addressed in grid units."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.image = Image.new("RGBA", (size * SUPERSAMPLE,) * 2, TRANSPARENT)
        self.draw = ImageDraw.Draw(self.image)

    def snap(self, units: float) -> int:
        """A grid position as a supersampled coordinate on a whole target pixel."""
        return math.floor(units * self.size / GRID + 0.5) * SUPERSAMPLE

    def fine(self, units: float) -> float:
        """A grid position as a supersampled coordinate, not snapped (for curves)."""
        return units * self.size / GRID * SUPERSAMPLE

    def box(self, left: float, top: float, right: float, bottom: float) -> list[int]:
        """A snapped rectangle; the right and bottom edges are exclusive."""
        return [
            self.snap(left),
            self.snap(top),
            self.snap(right) - 1,
            self.snap(bottom) - 1,
        ]

    def points(self, points: Sequence[tuple[float, float]]) -> list[tuple[float, ...]]:
        """Grid points as supersampled coordinates, for polygons and lines."""
        return [(self.fine(x), self.fine(y)) for x, y in points]

    def width(self, units: float) -> int:
        """A stroke width in supersampled pixels, at least one target pixel."""
        return max(SUPERSAMPLE, self.snap(units))

    def reduce(self) -> Image.Image:
        """The picture at its target size (each pixel the mean of its block)."""
        return self.image.reduce(SUPERSAMPLE)


def draw_ok(canvas: Canvas, colour: Colour) -> None:
    """A disc with a check mark."""
    canvas.draw.ellipse(canvas.box(1, 1, 15, 15), fill=colour)
    canvas.draw.line(
        canvas.points([(4.4, 8.3), (6.9, 10.8), (11.6, 5.6)]),
        fill=GLYPH,
        width=canvas.width(2),
        joint="curve",
    )


def draw_syncing(canvas: Canvas, colour: Colour) -> None:
    """A disc with two arrows chasing each other round."""
    canvas.draw.ellipse(canvas.box(1, 1, 15, 15), fill=colour)
    ring = [canvas.fine(4), canvas.fine(4), canvas.fine(12), canvas.fine(12)]
    stroke = canvas.width(1.75)
    for start in (200, 20):
        canvas.draw.arc(ring, start, start + 120, fill=GLYPH, width=stroke)
        tip = math.radians(start + 120)
        tangent = tip + math.pi / 2
        cx, cy = 8 + 4 * math.cos(tip), 8 + 4 * math.sin(tip)
        head = [
            (cx + 2.3 * math.cos(tip), cy + 2.3 * math.sin(tip)),
            (cx - 2.3 * math.cos(tip), cy - 2.3 * math.sin(tip)),
            (cx + 2.6 * math.cos(tangent), cy + 2.6 * math.sin(tangent)),
        ]
        canvas.draw.polygon(canvas.points(head), fill=GLYPH)


def draw_paused(canvas: Canvas, colour: Colour) -> None:
    """A rounded square with two upright bars."""
    canvas.draw.rounded_rectangle(
        canvas.box(1, 1, 15, 15), radius=canvas.snap(3), fill=colour
    )
    canvas.draw.rectangle(canvas.box(5, 4, 7, 12), fill=GLYPH)
    canvas.draw.rectangle(canvas.box(9, 4, 11, 12), fill=GLYPH)


def draw_attention(canvas: Canvas, colour: Colour) -> None:
    """A warning triangle with an exclamation mark."""
    canvas.draw.polygon(
        canvas.points([(8, 0.6), (15.6, 14.8), (0.4, 14.8)]), fill=colour
    )
    canvas.draw.rectangle(canvas.box(7, 5, 9, 10), fill=GLYPH)
    canvas.draw.rectangle(canvas.box(7, 11.5, 9, 13.5), fill=GLYPH)


def draw_not_set_up(canvas: Canvas, colour: Colour) -> None:
    """A gear (settings) with a hole in the middle."""
    teeth = 8
    outer, inner = 7.6, 5.6
    points = []
    for tooth in range(teeth):
        centre = 2 * math.pi * tooth / teeth
        for offset, radius in ((-0.3, inner), (-0.17, outer), (0.17, outer)):
            angle = centre + offset
            points.append((8 + radius * math.cos(angle), 8 + radius * math.sin(angle)))
        angle = centre + 0.3
        points.append((8 + inner * math.cos(angle), 8 + inner * math.sin(angle)))
    canvas.draw.polygon(canvas.points(points), fill=colour)
    canvas.draw.ellipse(canvas.box(2.5, 2.5, 13.5, 13.5), fill=colour)
    canvas.draw.ellipse(canvas.box(5.5, 5.5, 10.5, 10.5), fill=TRANSPARENT)


DRAWERS: dict[TrayState, Callable[[Canvas, Colour], None]] = {
    TrayState.OK: draw_ok,
    TrayState.SYNCING: draw_syncing,
    TrayState.PAUSED: draw_paused,
    TrayState.ATTENTION: draw_attention,
    TrayState.NOT_SET_UP: draw_not_set_up,
}


@functools.lru_cache(maxsize=64)
def _cached_icon(state: TrayState, size: int) -> Image.Image:
    """The drawn icon, kept: a state change must not redraw from scratch."""
    canvas = Canvas(size)
    DRAWERS[state](canvas, COLOURS[state])
    return canvas.reduce()


def draw_icon(state: TrayState, size: int = 32) -> Image.Image:
    """The icon for ``state`` drawn for ``size`` x ``size`` pixels (RGBA)."""
    if size < 8:
        raise ValueError(f"A tray icon needs at least 8 pixels, not {size}")
    return _cached_icon(TrayState(state), size).copy()
