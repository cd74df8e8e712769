"""The world map: TopoJSON country shapes → projected SVG paths, coloured by level.

Pure: the shapes are a file installed by ``python -m advisories.render.vendor``
(Natural Earth 1:50m via the npm package ``world-atlas``); this module decodes
the TopoJSON arcs, projects them with the Equal Earth projection (Šavrič,
Patterson & Jenny, 2018, from its published formula), and turns every country
into one SVG path. Projection and path text are computed once per file and
kept: the shapes never change, only the colours do.

Countries are keyed by ISO 3166-1 alpha-2, the code the rest of the project
uses. ``world-atlas`` identifies features by ISO 3166-1 numeric code; the few
without one are mapped by name (`_UNNUMBERED`).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

import pycountry

from advisories.countries import KOSOVO

__all__ = [
    "DEFAULT_SHAPES",
    "HEIGHT",
    "WIDTH",
    "CountryShape",
    "MapShapesMissingError",
    "country_shapes",
    "equal_earth",
    "outline",
    "shapes_from_topology",
]

#: Where ``python -m advisories.render.vendor`` puts the shapes.
DEFAULT_SHAPES: Final = Path(__file__).parent / "vendor" / "countries-50m.json"

#: The map's SVG user space (the projection's full extent, scaled to this width).
WIDTH: Final = 1000.0

# Equal Earth constants (Šavrič, Patterson & Jenny, "The Equal Earth map
# projection", International Journal of Geographical Information Science, 2018).
_A1, _A2, _A3, _A4 = 1.340264, -0.081106, 0.000893, 0.003796
_M: Final = math.sqrt(3) / 2
_X_MAX: Final = 2 * math.sqrt(3) * math.pi / (3 * _A1)
_THETA_MAX: Final = math.asin(_M)
_Y_MAX: Final = _A1 * _THETA_MAX + _A2 * _THETA_MAX**3 + _A3 * _THETA_MAX**7 + _A4 * _THETA_MAX**9
_SCALE: Final = WIDTH / (2 * _X_MAX)
#: Where the map stops in the south: Antarctica is left out, and all other land
#: (down to the South Sandwich Islands) lies north of this latitude.
_SOUTH_LIMIT: Final = -60.0

#: Features of world-atlas without a numeric id, by name → the code whose
#: colour they take. Kosovo has its own code; Northern Cyprus and Somaliland
#: take the colour of the country ISO (and the sources' country lists) file
#: them under; the Indian Ocean Territories and the Siachen Glacier stay
#: uncoloured rather than be given a guessed code.
_UNNUMBERED: Final[dict[str, str | None]] = {
    "Kosovo": KOSOVO,
    "N. Cyprus": "CY",
    "Somaliland": "SO",
    "Indian Ocean Ter.": None,
    "Siachen Glacier": None,
}
#: Left off the map: no one travels there on an advisory.
_LEFT_OUT: Final = frozenset({"AQ"})

# Points closer than this (in map units, a thousandth of the width) to the last
# kept one are dropped: about a pixel on screen, and half the path text.
_MIN_STEP: Final = 1.0


class MapShapesMissingError(FileNotFoundError):
    """The shapes file has not been installed."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"map shapes not found at {path}: run `python -m advisories.render.vendor`"
        )
        self.path = path


@dataclass(frozen=True, slots=True)
class CountryShape:
    """One country on the map.

    Attributes:
        iso: ISO 3166-1 alpha-2 code (``XK`` for Kosovo).
        name: Name from the shapes file (plain text; escape when shown).
        d: SVG path data in map units (``WIDTH`` × ``HEIGHT``).
    """

    iso: str
    name: str
    d: str


def equal_earth(lon: float, lat: float) -> tuple[float, float]:
    """Equal Earth projection of ``(lon, lat)`` in degrees → map units, y down.

    ``(0, 0)`` maps to the centre of the width; x runs 0 … ``WIDTH`` for
    longitudes in ±180° (a longitude past that lands past the edge).
    """
    lam = math.radians(lon)
    theta = math.asin(_M * math.sin(math.radians(lat)))
    t2 = theta * theta
    t6 = t2 * t2 * t2
    x = (
        2
        * math.sqrt(3)
        * lam
        * math.cos(theta)
        / (3 * (9 * _A4 * t6 * t2 + 7 * _A3 * t6 + 3 * _A2 * t2 + _A1))
    )
    y = theta * (_A1 + _A2 * t2 + t6 * (_A3 + _A4 * t2))
    return (x + _X_MAX) * _SCALE, (_Y_MAX - y) * _SCALE


HEIGHT: Final = equal_earth(0.0, _SOUTH_LIMIT)[1]


def _decode_arcs(topology: Mapping[str, Any]) -> list[list[tuple[float, float]]]:
    """Absolute ``(lon, lat)`` of every arc (delta-decoded when quantized)."""
    transform = topology.get("transform")
    arcs: list[list[tuple[float, float]]] = []
    for arc in topology["arcs"]:
        if transform:
            (sx, sy), (tx, ty) = transform["scale"], transform["translate"]
            x = y = 0
            points = []
            for dx, dy, *_ in arc:
                x += dx
                y += dy
                points.append((x * sx + tx, y * sy + ty))
        else:
            points = [(p[0], p[1]) for p in arc]
        arcs.append(points)
    return arcs


def _simplify(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """``points`` without those too close to the last kept one (both ends kept).

    Done per arc, so a border shared by two countries stays one line.
    """
    out: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(points):
        if out and i < len(points) - 1:
            px, py = out[-1]
            if abs(x - px) < _MIN_STEP and abs(y - py) < _MIN_STEP:
                continue
        out.append((x, y))
    return out


def _ring(
    indexes: Iterable[int], projected: Sequence[list[tuple[float, float]]]
) -> list[tuple[float, float]]:
    """A ring from its arcs (a negative index ``~i`` is arc ``i`` reversed)."""
    ring: list[tuple[float, float]] = []
    for index in indexes:
        arc = projected[index] if index >= 0 else projected[~index][::-1]
        # Consecutive arcs share their joining point.
        ring.extend(arc[1:] if ring else arc)
    return ring


def _unwrapped(
    indexes: Sequence[int], lonlat: Sequence[list[tuple[float, float]]]
) -> list[list[tuple[float, float]]] | None:
    """A ring that crosses the antimeridian, drawn on both edges of the map; else None.

    TopoJSON leaves antimeridian cutting to the renderer: a ring (eastern Russia,
    the Aleutians, Fiji) jumps from +180° to -180°, which drawn as is becomes a
    line across the whole map. Its longitudes are made continuous (past ±180°)
    and the ring is drawn twice, once shifted by 360°; the map's outline clips
    both to the part on the globe.
    """
    points = _ring(indexes, lonlat)
    offset = 0.0
    previous = None
    continuous = []
    for lon, lat in points:
        if previous is not None:
            step = lon + offset - previous
            if step > 180:
                offset -= 360
            elif step < -180:
                offset += 360
        previous = lon + offset
        continuous.append((previous, lat))
    if all(-180 <= lon <= 180 for lon, _ in continuous):
        return None
    shift = -360.0 if max(lon for lon, _ in continuous) > 180 else 360.0
    return [
        _simplify([equal_earth(lon + delta, lat) for lon, lat in continuous])
        for delta in (0.0, shift)
    ]


def outline(step: float = 1.0) -> str:
    """SVG path of the map's edge: the globe's outline from 60° S to the North Pole."""
    north = 90.0
    south = _SOUTH_LIMIT
    count = round((north - south) / step)
    west = [equal_earth(-180.0, south + i * step) for i in range(count + 1)]
    east = [equal_earth(180.0, north - i * step) for i in range(count + 1)]
    return _path_data([[*west, *east]])


def _path_data(rings: Iterable[Sequence[tuple[float, float]]]) -> str:
    parts = []
    for ring in rings:
        if len(ring) < 3:
            continue
        # Relative moves on a 0.1 grid: a third shorter than absolute points,
        # and rounding errors do not add up (each step is rounded from the
        # rounded position reached so far).
        gx, gy = round(ring[0][0] * 10), round(ring[0][1] * 10)
        text = [f"M{_tenths(gx)},{_tenths(gy)}l"]
        steps = []
        for x, y in ring[1:]:
            nx, ny = round(x * 10), round(y * 10)
            if (nx, ny) != (gx, gy):
                steps.append(f"{_tenths(nx - gx)},{_tenths(ny - gy)}")
                gx, gy = nx, ny
        if len(steps) < 2:
            continue
        text.append(" ".join(steps))
        parts.append("".join(text) + "z")
    return "".join(parts)


def _tenths(value: int) -> str:
    """An integer count of tenths as the shortest decimal text (``-5`` → ``-.5``)."""
    sign = "-" if value < 0 else ""
    whole, tenth = divmod(abs(value), 10)
    if tenth == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole or ''}.{tenth}"


def _alpha2(feature: Mapping[str, Any]) -> str | None:
    name = str(feature.get("properties", {}).get("name", ""))
    numeric = feature.get("id")
    if numeric is None:
        return _UNNUMBERED.get(name)
    country = pycountry.countries.get(numeric=str(numeric).zfill(3))
    return None if country is None else str(country.alpha_2)


def shapes_from_topology(
    topology: Mapping[str, Any], *, layer: str = "countries"
) -> tuple[CountryShape, ...]:
    """Every country of a TopoJSON topology as one projected SVG path.

    Features with the same code (a country and its detached parts listed
    apart) become one path. Features that map to no code are left out.

    Args:
        topology: A TopoJSON ``Topology`` with a ``layer`` object of Polygon /
            MultiPolygon geometries carrying ``id`` (ISO numeric) and
            ``properties.name``.
        layer: Name of the object holding the countries.

    Raises:
        ValueError: if the topology has no such layer.
    """
    try:
        geometries = topology["objects"][layer]["geometries"]
    except (KeyError, TypeError):
        raise ValueError(f"TopoJSON has no {layer!r} object") from None
    lonlat = _decode_arcs(topology)
    exact = [[equal_earth(lon, lat) for lon, lat in arc] for arc in lonlat]
    simple = [_simplify(arc) for arc in exact]
    rings: dict[str, list[list[tuple[float, float]]]] = defaultdict(list)
    names: dict[str, str] = {}
    for feature in geometries:
        iso = _alpha2(feature)
        if iso is None or iso in _LEFT_OUT:
            continue
        kind = feature.get("type")
        polygons = (
            [feature["arcs"]]
            if kind == "Polygon"
            else feature.get("arcs", [])
            if kind == "MultiPolygon"
            else []
        )
        for polygon in polygons:
            for indexes in polygon:
                wrapped = _unwrapped(indexes, lonlat)
                if wrapped is not None:
                    rings[iso].extend(wrapped)
                    continue
                ring = _ring(indexes, simple)
                # A small island collapses when simplified: keep it exact.
                rings[iso].append(ring if len(ring) >= 5 else _ring(indexes, exact))
        name = str(feature.get("properties", {}).get("name", iso))
        # The numbered feature names the country (not "N. Cyprus" for CY).
        if iso not in names or feature.get("id") is not None:
            names[iso] = name
    shapes = []
    for iso in sorted(rings):
        d = _path_data(rings[iso])
        if d:
            shapes.append(CountryShape(iso=iso, name=names[iso], d=d))
    return tuple(shapes)


@cache
def country_shapes(path: Path = DEFAULT_SHAPES) -> tuple[CountryShape, ...]:
    """The projected countries of the shapes file at ``path`` (computed once).

    Raises:
        MapShapesMissingError: if the file is not there.
        ValueError: if it is not a countries TopoJSON.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MapShapesMissingError(path) from None
    try:
        topology = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    return shapes_from_topology(topology)
