"""SVG is re-built from an allow-list before it is inlined in the HTML.

Our own figures are stored as data and drawn at render time (:mod:`audit.report.charts`), but
their labels are data too, and a plugin's section template may inline SVG of its own (through the
``safe_svg`` filter), so the report never trusts markup: the SVG is parsed, and only drawing
elements and presentation attributes are written back (no script, no foreignObject, no event
handler, no link out of the document, no markup that could close the ``<svg>`` and continue as
HTML). Anything that does not parse becomes a short placeholder. The page's Content-Security-Policy forbids scripts too;
this is the second wall.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ELEMENTS = frozenset({
    "svg", "g", "defs", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text", "tspan",
    "clipPath", "use", "style", "title", "desc", "linearGradient", "radialGradient", "stop", "symbol", "mask",
    "pattern", "marker", "image",
})
# Raster images inside a figure (matplotlib's imshow, colour bars) as inline PNG/JPEG data only.
_RASTER = re.compile(r"^data:image/(png|jpeg);base64,[A-Za-z0-9+/=\s]*$")
ATTRIBUTES = frozenset({
    "id", "class", "style", "d", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "width", "height",
    "points", "transform", "viewBox", "version", "preserveAspectRatio", "fill", "fill-opacity", "fill-rule",
    "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin", "stroke-dasharray", "stroke-dashoffset",
    "stroke-opacity", "stroke-miterlimit", "opacity", "clip-path", "clip-rule", "font-family", "font-size",
    "font-weight", "font-style", "text-anchor", "dominant-baseline", "alignment-baseline", "dx", "dy",
    "letter-spacing", "offset", "stop-color", "stop-opacity", "gradientUnits", "gradientTransform",
    "patternUnits", "patternContentUnits", "maskUnits", "clipPathUnits", "markerWidth", "markerHeight",
    "refX", "refY", "orient", "type", "href", "display", "visibility", "mask", "marker-start", "marker-mid",
    "marker-end", "data-name", "role", "aria-label", "image-rendering",
})
# url(#local) references only; no external resource, no expression, no escaped trickery.
_URL = re.compile(r"url\s*\(\s*(?!['\"]?#)", re.I)
_CSS_BAD = re.compile(r"@import|expression\s*\(|javascript:|\\", re.I)
MAX_SVG_CHARS = 5_000_000
PLACEHOLDER = '<p class="note">[figure omitted: its markup did not pass the report\'s SVG check]</p>'


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return None, tag


def _clean_value(value: str) -> str | None:
    if _RASTER.match(value):
        return value
    if _URL.search(value) or _CSS_BAD.search(value):
        return None
    return value


def _copy(node: Any, out_parent: Any | None) -> Any | None:
    ns, name = _local(node.tag) if isinstance(node.tag, str) else (None, "")
    if ns not in (SVG_NS, None) or name not in ELEMENTS:
        return None
    attrs = {}
    for key, value in node.attrib.items():
        a_ns, a_name = _local(key)
        if a_ns not in (None, XLINK_NS) or a_name not in ATTRIBUTES or a_name.lower().startswith("on"):
            continue
        if a_name == "href" and not (value.startswith("#") or (name == "image" and _RASTER.match(value))):
            continue
        clean = _clean_value(value)
        if clean is not None:
            attrs[f"{{{XLINK_NS}}}href" if a_ns == XLINK_NS else a_name] = clean
    tag = f"{{{SVG_NS}}}{name}"
    el = ET.Element(tag, attrs) if out_parent is None else ET.SubElement(out_parent, tag, attrs)
    text = node.text or ""
    if name == "style" and _CSS_BAD.search(text + " ") or (name == "style" and _URL.search(text)):
        text = ""
    el.text = text or None
    for child in node:
        copied = _copy(child, el)
        if copied is not None:
            copied.tail = child.tail
    return el


def sanitize_svg(markup: str) -> str:
    """The SVG rebuilt from the allow-list, or PLACEHOLDER when it is not one SVG document."""
    from markupsafe import Markup

    if not isinstance(markup, str) or len(markup) > MAX_SVG_CHARS or "<!DOCTYPE" in markup or "<!ENTITY" in markup:
        return Markup(PLACEHOLDER)
    try:
        root = ET.fromstring(markup.strip())
    except ET.ParseError:
        return Markup(PLACEHOLDER)
    if _local(root.tag)[1] != "svg":
        return Markup(PLACEHOLDER)
    ET.register_namespace("", SVG_NS)
    ET.register_namespace("xlink", XLINK_NS)
    clean = _copy(root, None)
    return Markup(ET.tostring(clean, encoding="unicode", method="xml"))


def safe_svg(markup: Any) -> str:
    """Jinja2 filter: ``{{ markup | safe_svg }}``, for SVG a plugin's own template inlines."""
    return sanitize_svg(markup)
