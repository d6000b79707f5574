"""The annual self-assessment as one self-contained HTML file: inline CSS, charts drawn as inline SVG,
no scripts, fonts, images or links to anything outside the file, so it can be mailed, archived and
opened offline by an auditor years later. English only: it is written for auditors and controllers.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup, escape

from rightsdesk.kernel import clock
from rightsdesk.render import TEMPLATES_DIR

REPORT_DIR = TEMPLATES_DIR / "operator" / "report"
PALETTE = ("#0b4f8a", "#2a7f62", "#b5651d", "#7a3e9d", "#a23b3b", "#4b6b7a", "#8a7a0b", "#3b5ba2")
BAR_HEIGHT, GAP, LABEL_WIDTH, BAR_AREA, VALUE_WIDTH = 20, 8, 190, 330, 60


def bar_chart(rows: list[tuple[str, float]], *, title: str, unit: str = "") -> Markup:
    """Horizontal bars, one per (label, value), scaled to the largest value; a titled, accessible SVG."""
    if not rows:
        return Markup('<p class="empty">{}</p>').format(f"No data for {title.lower()}.")
    top = max(value for _, value in rows) or 1
    height = len(rows) * (BAR_HEIGHT + GAP) + GAP
    width = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH
    parts = [
        Markup(
            '<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{w}" height="{h}" '
            'viewBox="0 0 {w} {h}" aria-labelledby="{id}"><title id="{id}">{t}</title>'
        ).format(w=width, h=height, t=title, id=_slug(title))
    ]
    for n, (label, value) in enumerate(rows):
        y = GAP + n * (BAR_HEIGHT + GAP)
        length = max(1.0, BAR_AREA * value / top) if value else 0
        parts.append(
            Markup(
                '<text x="{lx}" y="{ty}" text-anchor="end" class="label">{label}</text>'
                '<rect x="{x}" y="{y}" width="{len:.1f}" height="{h}" fill="{color}" rx="2"/>'
                '<text x="{vx:.1f}" y="{ty}" class="value">{value}</text>'
            ).format(
                lx=LABEL_WIDTH - 8,
                ty=y + BAR_HEIGHT - 5,
                label=label,
                x=LABEL_WIDTH,
                y=y,
                len=length,
                h=BAR_HEIGHT,
                color=PALETTE[n % len(PALETTE)],
                vx=LABEL_WIDTH + length + 6,
                value=f"{_number(value)}{unit}",
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def share_bar(share: float | None, *, title: str) -> Markup:
    """One bar split into the share (e.g. answered on time) and the rest."""
    if share is None:
        return Markup('<p class="empty">{}</p>').format(f"No data for {title.lower()}.")
    width, height = LABEL_WIDTH + BAR_AREA + VALUE_WIDTH, 36
    done = (width - VALUE_WIDTH) * share
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'aria-labelledby="{id}"><title id="{id}">{t}</title>'
        '<rect x="0" y="6" width="{full:.1f}" height="24" fill="#d9dee3" rx="3"/>'
        '<rect x="0" y="6" width="{done:.1f}" height="24" fill="#2a7f62" rx="3"/>'
        '<text x="{vx:.1f}" y="23" class="value">{pct}</text></svg>'
    ).format(
        w=width,
        h=height,
        id=_slug(title),
        t=title,
        full=width - VALUE_WIDTH,
        done=done,
        vx=width - VALUE_WIDTH + 6,
        pct=f"{share * 100:.1f} %",
    )


def _slug(text: str) -> str:
    return "chart-" + "".join(c if c.isalnum() else "-" for c in text.lower())


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _when(value: datetime | None) -> str:
    return clock.isoformat(value).replace("T", " ").replace("Z", " UTC") if value else "–"


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(REPORT_DIR), autoescape=True, auto_reload=False, trim_blocks=True, lstrip_blocks=True
    )
    env.filters.update(when=_when, hours=lambda h: "–" if h is None else f"{h:g} h")
    env.globals.update(bar_chart=bar_chart, share_bar=share_bar, escape=escape)
    return env


def render(figures: dict, *, operator: str | None = None) -> str:
    requests = figures["requests"]
    charts = {
        "by_type": bar_chart(list(requests["by_type"].items()), title="Requests by type"),
        "by_route": bar_chart(list(requests["by_route"].items()), title="Requests by route"),
        "by_outcome": bar_chart([(k, v) for k, v in requests["by_outcome"].items()], title="Requests by outcome"),
        "on_time": share_bar(requests["on_time_share"], title="Share answered on time"),
        "days": bar_chart(
            [
                (label, requests["days_to_complete"][key])
                for label, key in (("median", "median"), ("95th percentile", "p95"))
                if requests["days_to_complete"][key] is not None
            ],
            title="Days to complete",
            unit=" d",
        ),
    }
    return _environment().get_template("annual.html").render(f=figures, charts=charts, operator=operator)
