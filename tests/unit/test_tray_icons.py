"""The icon pictures: one colour and one shape per state, crisp at 16, 24 and 32 px."""

from __future__ import annotations

import collections
import itertools

import pytest
from PIL import Image

from agent.tray.icons import COLOURS, GLYPH, SIZES, draw_icon
from agent.tray.state import TrayState


def pixels(image: Image.Image) -> list[tuple[int, ...]]:
    """Every pixel, row by row (getdata is deprecated in newer Pillow)."""
    width, height = image.size
    return [image.getpixel((x, y)) for y in range(height) for x in range(width)]


def main_colour(image: Image.Image) -> tuple[int, ...]:
    """The commonest colour of the opaque pixels that are not the white symbol."""
    opaque = [p[:3] for p in pixels(image) if p[3] == 255 and p[:3] != GLYPH]
    return collections.Counter(opaque).most_common(1)[0][0]


def distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """How far apart two colours are (Euclidean, in RGB)."""
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5


def silhouette(image: Image.Image) -> list[bool]:
    """Which pixels the shape covers (at least half opaque)."""
    return [p[3] >= 128 for p in pixels(image)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("state", list(TrayState))
def test_icon_has_the_size_and_a_transparent_background(
    state: TrayState, size: int
) -> None:
    image = draw_icon(state, size)
    assert image.mode == "RGBA"
    assert image.size == (size, size)
    assert image.getpixel((0, 0))[3] == 0, "a corner shows the tray through it"
    covered = sum(silhouette(image)) / size**2
    assert 0.35 < covered < 0.95, "the shape fills the icon without being a square"


@pytest.mark.parametrize("size", SIZES)
def test_each_state_has_its_own_colour(size: int) -> None:
    for state in TrayState:
        assert main_colour(draw_icon(state, size)) == COLOURS[state]
    for a, b in itertools.combinations(TrayState, 2):
        assert distance(COLOURS[a], COLOURS[b]) > 80, f"{a} and {b} look alike"


@pytest.mark.parametrize("size", SIZES)
def test_each_state_has_its_own_shape(size: int) -> None:
    # Read without colour: the shape and its white symbol tell the states apart.
    def form(state: TrayState) -> list[int]:
        image = draw_icon(state, size)
        return [
            0 if p[3] < 128 else 2 if min(p[:3]) > 200 else 1 for p in pixels(image)
        ]

    for a, b in itertools.combinations(TrayState, 2):
        differing = sum(x != y for x, y in zip(form(a), form(b), strict=True))
        assert differing >= 0.12 * size**2, f"{a} and {b} have one shape at {size}"


@pytest.mark.parametrize("size", SIZES)
def test_straight_edges_land_on_whole_pixels(size: int) -> None:
    # Drawn for each size, not scaled from one picture: across the middle of the
    # pause bars every pixel is exactly bar or exactly background, never a blend.
    image = draw_icon(TrayState.PAUSED, size)
    row = [image.getpixel((x, size // 2)) for x in range(size // 4, size * 3 // 4)]
    assert {p[:3] for p in row} == {GLYPH, COLOURS[TrayState.PAUSED]}
    assert all(p[3] == 255 for p in row)

    # The same for the exclamation mark's stem on the warning triangle.
    image = draw_icon(TrayState.ATTENTION, size)
    stem = [
        image.getpixel((x, size * 7 // 16)) for x in range(size * 5 // 16, size // 2)
    ]
    assert {p[:3] for p in stem} <= {GLYPH, COLOURS[TrayState.ATTENTION]}
    assert GLYPH in {p[:3] for p in stem}


def test_scaled_down_picture_would_blur_where_ours_does_not() -> None:
    # The check above can fail: a 32 px picture reduced to 24 px blends the bars.
    scaled = draw_icon(TrayState.PAUSED, 32).resize((24, 24), Image.Resampling.LANCZOS)
    row = {scaled.getpixel((x, 12))[:3] for x in range(6, 18)}
    assert not row <= {GLYPH, COLOURS[TrayState.PAUSED]}


def test_icons_are_copies() -> None:
    first = draw_icon(TrayState.OK, 16)
    first.putpixel((8, 8), (0, 0, 0, 0))
    assert draw_icon(TrayState.OK, 16).getpixel((8, 8)) != (0, 0, 0, 0)


def test_too_small_size_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 8 pixels"):
        draw_icon(TrayState.OK, 4)
