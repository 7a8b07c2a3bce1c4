"""Small line charts drawn server-side as SVG coordinates (no scripts, no CDN): the template draws them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

WIDTH = 360
HEIGHT = 90
PAD = 4


@dataclass(frozen=True)
class Chart:
    title: str
    points: str  # "x,y x,y ..." for <polyline points=...>
    area: str  # the polyline closed along the baseline, for a filled <polygon>
    latest: float
    peak: float
    unit: str
    start: datetime | None
    end: datetime | None
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def summary(self) -> str:
        return f"{self.title}: latest {self.latest:.1f}{self.unit}, peak {self.peak:.1f}{self.unit}"


def line_chart(title: str, series: list[tuple[datetime, float]], *, unit: str = "") -> Chart:
    values = [v for _, v in series]
    peak = max(values, default=0.0)
    scale = peak if peak > 0 else 1.0
    count = max(len(values) - 1, 1)
    coords = []
    for index, value in enumerate(values):
        x = PAD + (WIDTH - 2 * PAD) * index / count
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value / scale)
        coords.append(f"{x:.1f},{y:.1f}")
    points = " ".join(coords)
    area = f"{PAD:.1f},{HEIGHT - PAD:.1f} {points} {WIDTH - PAD:.1f},{HEIGHT - PAD:.1f}" if coords else ""
    return Chart(
        title=title,
        points=points,
        area=area,
        latest=values[-1] if values else 0.0,
        peak=peak,
        unit=unit,
        start=series[0][0] if series else None,
        end=series[-1][0] if series else None,
    )
