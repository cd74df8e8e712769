"""The world map's projection and path output, on TopoJSON made here (pure: no server)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from advisories.render.worldmap import (
    HEIGHT,
    WIDTH,
    MapShapesMissingError,
    country_shapes,
    equal_earth,
    outline,
    shapes_from_topology,
)

# A quantized topology: 0.01° per unit, origin at (-180, -90).
SCALE = 0.01


def q(lon: float, lat: float) -> tuple[int, int]:
    return round((lon + 180) / SCALE), round((lat + 90) / SCALE)


def arc(*points: tuple[float, float]) -> list[list[int]]:
    """A delta-encoded arc through ``points`` (lon, lat)."""
    out: list[list[int]] = []
    last = (0, 0)
    for lon, lat in points:
        x, y = q(lon, lat)
        out.append([x - last[0], y - last[1]])
        last = (x, y)
    return out


def topology() -> dict[str, Any]:
    """France and Germany sharing a border, Kosovo (no numeric id), a country with an
    unknown id, Antarctica, and Fiji across the antimeridian."""
    arcs = [
        # 0: the shared border (5°E, 45..50°N), north to south
        arc((5, 50), (5, 47.5), (5, 45)),
        # 1: France's other sides, from the border's south end round to its north end
        arc((5, 45), (0, 45), (0, 50), (5, 50)),
        # 2: Germany's other sides, from the border's north end round to its south end
        arc((5, 50), (10, 50), (10, 45), (5, 45)),
        # 3: Kosovo, closed
        arc((20, 42), (21, 42), (21, 43), (20, 43), (20, 42)),
        # 4: unknown id, closed
        arc((30, 10), (31, 10), (31, 11), (30, 10)),
        # 5: Antarctica, closed
        arc((-50, -80), (50, -80), (0, -70), (-50, -80)),
        # 6: Fiji, across 180°: 178°E → 178°W and back
        arc(
            (178, -17), (179.5, -17), (-178, -17), (-178, -18), (179.5, -18), (178, -18), (178, -17)
        ),
    ]
    return {
        "type": "Topology",
        "transform": {"scale": [SCALE, SCALE], "translate": [-180, -90]},
        "arcs": arcs,
        "objects": {
            "countries": {
                "type": "GeometryCollection",
                "geometries": [
                    {
                        "type": "Polygon",
                        "id": "250",
                        "arcs": [[0, 1]],
                        "properties": {"name": "France"},
                    },
                    {
                        "type": "Polygon",
                        "id": "276",
                        "arcs": [[2, -1]],
                        "properties": {"name": "Germany"},
                    },
                    {"type": "Polygon", "arcs": [[3]], "properties": {"name": "Kosovo"}},
                    {
                        "type": "Polygon",
                        "id": "999",
                        "arcs": [[4]],
                        "properties": {"name": "Nowhere"},
                    },
                    {
                        "type": "MultiPolygon",
                        "id": "010",
                        "arcs": [[[5]]],
                        "properties": {"name": "Antarctica"},
                    },
                    {"type": "Polygon", "id": "242", "arcs": [[6]], "properties": {"name": "Fiji"}},
                ],
            }
        },
    }


def points(d: str) -> list[list[tuple[float, float]]]:
    """Absolute points of each subpath of our path data (``Mx,y l dx,dy … z``)."""
    rings = []
    for sub in re.findall(r"M([^z]*)z", d):
        start, _, rest = sub.partition("l")
        x, y = map(float, start.split(","))
        ring = [(x, y)]
        for step in rest.split():
            dx, dy = map(float, step.split(","))
            x, y = x + dx, y + dy
            ring.append((x, y))
        rings.append(ring)
    return rings


def test_projection_spans_the_width_and_is_symmetric() -> None:
    assert equal_earth(0, 0)[0] == pytest.approx(WIDTH / 2)
    assert equal_earth(-180, 0)[0] == pytest.approx(0, abs=1e-9)
    assert equal_earth(180, 0)[0] == pytest.approx(WIDTH)
    assert equal_earth(0, 90)[1] == pytest.approx(0, abs=1e-9)  # north pole at the top
    x, y = equal_earth(37, 21)
    mx, my = equal_earth(-37, -21)
    assert x + mx == pytest.approx(WIDTH) and y + my == pytest.approx(2 * equal_earth(0, 0)[1])
    assert HEIGHT == pytest.approx(equal_earth(0, -60)[1])


def _cell_area(lon: float, lat: float, size: float = 0.5) -> float:
    corners = [equal_earth(lon, lat), equal_earth(lon + size, lat)]
    corners += [equal_earth(lon + size, lat + size), equal_earth(lon, lat + size)]
    return 0.5 * abs(
        sum(
            x1 * y2 - x2 * y1
            for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1], strict=True)
        )
    )


@pytest.mark.parametrize(("lon", "lat"), [(0, 0), (100, 30), (-60, -45), (170, 70)])
def test_projection_is_equal_area(lon: float, lat: float) -> None:
    # Equal Earth keeps areas: a cell's map area is proportional to its area on
    # the sphere (∝ Δλ · Δsin φ), wherever it is.
    def sphere(la: float, size: float = 0.5) -> float:
        return math.sin(math.radians(la + size)) - math.sin(math.radians(la))

    ratio = _cell_area(lon, lat) / sphere(lat)
    assert ratio == pytest.approx(_cell_area(10, 5) / sphere(5), rel=2e-3)


def test_one_path_per_country_keyed_by_alpha2() -> None:
    shapes = {s.iso: s for s in shapes_from_topology(topology())}
    # Unknown ids are left out, Antarctica too; Kosovo is XK though it has no id.
    assert sorted(shapes) == ["DE", "FJ", "FR", "XK"]
    assert shapes["FR"].name == "France" and shapes["XK"].name == "Kosovo"
    for shape in shapes.values():
        assert re.fullmatch(r"(M-?[\d.]+,-?[\d.]+l[-\d., ]+z)+", shape.d), shape.d


def test_shared_border_is_the_same_line_in_both_countries() -> None:
    shapes = {s.iso: s for s in shapes_from_topology(topology())}
    border = {equal_earth(5, lat) for lat in (45, 50)}
    for iso in ("FR", "DE"):
        (ring,) = points(shapes[iso].d)
        for bx, by in border:
            assert any(abs(x - bx) < 0.11 and abs(y - by) < 0.11 for x, y in ring), iso
    (france,) = points(shapes["FR"].d)
    xs = [x for x, _ in france]
    assert min(xs) == pytest.approx(equal_earth(0, 45)[0], abs=0.2)
    assert max(xs) == pytest.approx(equal_earth(5, 45)[0], abs=0.2)  # widest at its south


def test_a_ring_across_the_antimeridian_is_drawn_on_both_edges_not_across_the_map() -> None:
    (fiji,) = [s for s in shapes_from_topology(topology()) if s.iso == "FJ"]
    rings = points(fiji.d)
    assert len(rings) == 2  # once at the east edge, once shifted to the west edge
    for ring in rings:
        xs = [x for x, _ in ring]
        assert max(xs) - min(xs) < 20  # a few degrees wide, not the whole map
    centres = sorted(sum(x for x, _ in ring) / len(ring) for ring in rings)
    assert centres[0] < equal_earth(-175, -17)[0] and centres[1] > equal_earth(175, -17)[0]


def test_outline_closes_round_the_globe() -> None:
    (ring,) = points(outline())
    xs = [x for x, _ in ring]
    assert min(xs) == pytest.approx(0, abs=0.2) and max(xs) == pytest.approx(WIDTH, abs=0.2)


def test_missing_shapes_file_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(MapShapesMissingError, match=r"run `python -m advisories\.render\.vendor`"):
        country_shapes(tmp_path / "nothing.json")


def test_not_a_countries_topology_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no 'countries' object"):
        shapes_from_topology({"type": "Topology", "arcs": [], "objects": {}})
