"""A drift report as one self-contained HTML page: look at the shapes, not a PSI column.

Pure string building (``html.escape`` on every piece of text that came from data),
inline CSS and SVG, and a few lines of inline JavaScript for search and sort, so the
file opens from disk, attaches to an incident or a CI artefact, and needs no network
or library at view time. Without JavaScript every section is still there (the
drifted ones open); without colour the verdicts are words and the two series differ
in lightness and are labelled.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import re
from collections.abc import Iterable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any

from .schema import OTHER

if TYPE_CHECKING:  # DriftReport.to_html imports this module: no import back at run time
    from .drift import DriftReport, DriftRow, DriftThresholds

# One place for the numbers' formats, so the tests compare with what is shown.
METRIC_FORMAT = ".4f"
SHARE_FORMAT = ".1%"


def metric_text(value: float | None) -> str:
    """PSI/KS/KL/JS as shown (the same format as the text table)."""
    return "-" if value is None else format(value, METRIC_FORMAT)


def share_text(value: float | None) -> str:
    """A share (missing, unseen, a bin's mass) as shown."""
    return "-" if value is None else format(value, SHARE_FORMAT)


def verdict(row: DriftRow) -> str:
    """The verdict in words: DRIFT, ok, too few values (below min_count), or no data."""
    if row.psi is None:
        return "no data"
    if row.drifted:
        return "DRIFT"
    if row.n < row.thresholds.min_count:
        return "too few values"
    return "ok"


def severity(row: DriftRow) -> float:
    """How far past its threshold the worse metric is (1.0 = at the threshold)."""
    if row.psi is None:
        return -1.0
    limits = row.thresholds
    score = row.psi / limits.psi if limits.psi > 0 else math.inf
    if row.ks is not None and limits.ks > 0:
        score = max(score, row.ks / limits.ks)
    return score


def drift_order(rows: Iterable[DriftRow]) -> list[DriftRow]:
    """Drifted first, then by severity (the worse of PSI and KS relative to its threshold)."""
    return sorted(rows, key=lambda r: (not r.drifted, -severity(r)))


def _reasons(row: DriftRow) -> str:
    """Why the verdict, in words (not only colour)."""
    limits = row.thresholds
    if row.psi is None:
        return "nothing counted on one side, so nothing to compare"
    parts = []
    if row.psi >= limits.psi:
        parts.append(f"PSI {metric_text(row.psi)} ≥ {limits.psi:g}")
    if row.ks is not None and row.ks >= limits.ks:
        parts.append(f"KS {metric_text(row.ks)} ≥ {limits.ks:g}")
    if row.drifted:
        return "drift: " + " and ".join(parts)
    if row.n < limits.min_count:
        beyond = f" ({' and '.join(parts)})" if parts else ""
        return f"only {row.n:,} values, fewer than {limits.min_count:,}: not judged{beyond}"
    return f"within thresholds (PSI < {limits.psi:g}" + (
        f", KS < {limits.ks:g})" if row.ks is not None else ")"
    )


def _short(number: float) -> str:
    """An edge for an axis label: 4 significant digits, k/M/G instead of exponents."""
    size = abs(number)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if 1e4 <= size < 1e12 and size >= scale:
            return format(number / scale, ".3g") + suffix
    return format(number, ".4g")


def _bin_ranges(row: DriftRow) -> list[str]:
    """Exact bin bounds (the runtime ``le`` strings), for tooltips and the bin table."""
    labels = list(row.bins.labels) if row.bins else []
    if row.kind != "numeric":
        return labels
    if len(labels) == 1:
        return ["(-Inf, +Inf)"]
    return (
        [f"(-Inf, {labels[0]}]"]
        + [f"({a}, {b}]" for a, b in zip(labels, labels[1:-1])]
        + [f"({labels[-2]}, +Inf)"]
    )


def _nice_top(value: float) -> float:
    """A round axis maximum at or above ``value`` (a share, 0..1)."""
    for top in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0):
        if value <= top + 1e-12:
            return top
    return 1.0


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def bar_chart(row: DriftRow) -> str:
    """Inline SVG: baseline and current share of every bin, side by side.

    Numeric bins are labelled like a histogram axis, with each edge at the boundary
    between two bins (the end bins are open); categories under their bars. Every bin
    has a tooltip with its exact bounds and both shares.
    """
    bins = row.bins
    if bins is None or not bins.labels:
        return ""
    ranges = _bin_ranges(row)
    count = len(ranges)
    numeric = row.kind == "numeric"
    group = max(30.0, min(64.0, 600.0 / count))
    bar = (group - 8) / 2
    top = _nice_top(max(max(bins.baseline, default=0), max(bins.current, default=0), 0.01))
    plot_h, top_pad = 130.0, 10.0
    # (x from the plot's left, text) of every axis label: edges between groups, or
    # categories under them
    if numeric:
        ticks = [((i + 1) * group, _short(float(le))) for i, le in enumerate(bins.labels[:-1])]
    else:
        ticks = [(i * group + group / 2, _clip(c, 16)) for i, c in enumerate(bins.labels)]
    longest = max((len(t) for _, t in ticks), default=1)
    space = group if count > 2 else 3 * group
    rotate = longest * 6.3 > space - 4
    # room on the left for the y axis, and for the first label when it slants that way
    left = 44.0
    if rotate and ticks:
        left = max(left, len(ticks[0][1]) * 4.9 - ticks[0][0] + 4)
    ticks = [(left + x, text) for x, text in ticks]
    label_h = longest * 5.0 + 16 if rotate else 20.0
    width = left + count * group + (40 if rotate else 24)
    height = top_pad + plot_h + label_h
    y0 = top_pad + plot_h
    out = [
        f'<svg class="bars" role="img" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}">',
        f"<title>{escape(row.name)}: baseline and current share per bin</title>",
    ]
    right = left + count * group
    for frac in (0.0, 0.5, 1.0):
        y = y0 - frac * plot_h
        out.append(
            f'<line class="grid" x1="{left - 4}" x2="{right:.0f}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 7}" y="{y + 3.5:.1f}">{share_text(frac * top)}</text>'
        )
    for i, exact in enumerate(ranges):
        x = left + i * group + 4
        b, c = bins.baseline[i], bins.current[i]
        tip = escape(f"{exact}: baseline {share_text(b)}, current {share_text(c)}")
        out.append(f"<g><title>{tip}</title>")
        for offset, share, cls in ((0.0, b, "base"), (bar, c, "cur")):
            h = share / top * plot_h
            out.append(
                f'<rect class="{cls}" x="{x + offset:.1f}" y="{y0 - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}"/>'
            )
        out.append("</g>")
    for x, text in ticks:
        if numeric:
            out.append(f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y0 + 4}"/>')
        label = escape(text)
        if rotate:
            out.append(
                f'<text class="bin" transform="translate({x + 3:.1f},{y0 + 10:.1f}) rotate(-40)" '
                f'text-anchor="end">{label}</text>'
            )
        else:
            out.append(
                f'<text class="bin" x="{x:.1f}" y="{y0 + 15:.1f}" text-anchor="middle">'
                f"{label}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def anchor(row: DriftRow) -> str:
    """The section's id (HTML ids hold no whitespace): ``role-name``."""
    return re.sub(r"\s", "_", f"{row.role}-{row.name}")


def _num_attr(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _facts(row: DriftRow) -> str:
    """The numbers of one column, each labelled; ``data-metric`` marks them for tests."""
    bins = row.bins
    base_n = f"{bins.baseline_n:,}" if bins else "-"
    base_missing = share_text(bins.baseline_missing_share) if bins else "-"
    limits = row.thresholds
    rows = [
        '<table class="facts">',
        "<thead><tr><th></th><th>baseline</th><th>current</th></tr></thead><tbody>",
        f'<tr><th>values counted</th><td>{base_n}</td><td data-metric="n">{row.n:,}</td></tr>',
        f"<tr><th>missing</th><td>{base_missing}</td>"
        f'<td data-metric="missing_share">{share_text(row.missing_share)}</td></tr>',
    ]
    if row.kind == "categorical" and bins:
        rows.append(
            f"<tr><th>unseen ({OTHER})</th><td>{share_text(bins.baseline[-1])}</td>"
            f'<td data-metric="unseen_share">{share_text(row.unseen_share)}</td></tr>'
        )
    rows.append("</tbody></table>")
    metrics = [
        ("psi", "PSI", row.psi, f"drift at ≥ {limits.psi:g}"),
        (
            "ks",
            "KS",
            row.ks,
            f"drift at ≥ {limits.ks:g}" if row.kind == "numeric" else "numeric only",
        ),
        ("kl", "KL", row.kl, "KL(baseline ‖ current), nats"),
        ("js", "JS", row.js, "Jensen-Shannon distance, 0–1"),
    ]
    rows.append('<table class="facts metrics"><tbody>')
    for key, label, value, note in metrics:
        rows.append(
            f'<tr><th>{label}</th><td data-metric="{key}">{metric_text(value)}</td>'
            f'<td class="note">{note}</td></tr>'
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _bin_table(row: DriftRow) -> str:
    bins = row.bins
    if bins is None:
        return ""
    cells = "".join(
        f"<tr><td>{escape(name)}</td><td>{share_text(b)}</td><td>{share_text(c)}</td>"
        f"<td>{(c - b) * 100:+.1f} pt</td></tr>"
        for name, b, c in zip(_bin_ranges(row), bins.baseline, bins.current)
    )
    return (
        '<details class="bintable"><summary>Shares per bin</summary><table>'
        "<thead><tr><th>bin</th><th>baseline</th><th>current</th><th>change</th></tr></thead>"
        f"<tbody>{cells}</tbody></table></details>"
    )


_VERDICT_CLASS = {"DRIFT": "drift", "ok": "ok", "too few values": "few", "no data": "none"}


def section(row: DriftRow, rank: int) -> str:
    """One ``<details>`` per feature or output; drifted ones start open."""
    word = verdict(row)
    cls = _VERDICT_CLASS[word]
    name = escape(row.name)
    attrs = (
        f'class="col {cls}" id="{escape(anchor(row))}" data-name="{name}" '
        f'data-role="{escape(row.role)}" data-rank="{rank}" data-n="{row.n}" '
        f'data-psi="{_num_attr(row.psi)}" data-ks="{_num_attr(row.ks)}" '
        f'data-js="{_num_attr(row.js)}"'
    )
    summary = (
        f'<summary><span class="name">{name}</span>'
        f'<span class="kind">{escape(row.role)} · {escape(row.kind)}</span>'
        f'<span class="verdict v-{cls}" data-metric="verdict">{escape(word)}</span>'
        f'<span class="num">{metric_text(row.psi)}</span>'
        f'<span class="num">{metric_text(row.ks)}</span>'
        f'<span class="num">{metric_text(row.js)}</span>'
        f'<span class="num">{row.n:,}</span></summary>'
    )
    body = (
        f'<div class="body"><p class="why">{escape(_reasons(row))}</p>'
        f'<div class="panels"><div class="chart">{bar_chart(row)}'
        '<p class="legend"><span class="key base"></span>baseline '
        '<span class="key cur"></span>current</p></div>'
        f'<div class="numbers">{_facts(row)}</div></div>{_bin_table(row)}</div>'
    )
    return f"<details {attrs}{' open' if row.drifted else ''}>{summary}{body}</details>"


def _plain(value: Any) -> Any:
    """A quality block given as a dataclass or an object with ``to_dict`` -> plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return format(value, ".4g")
    return escape(str(value))


def quality_block(quality: Any) -> str:
    """Model quality next to drift, from plain data (issue 11 fills it in).

    ``quality`` maps an output name to its figures: scalar metrics (``mae``,
    ``rmse``, ``accuracy``, ``n``...), optionally ``baseline`` (the same metrics at
    training time, shown side by side) and ``confusion`` (``{"labels": [...],
    "matrix": [[...]]}``, rows actual, columns predicted).
    """
    quality = _plain(quality)
    if not quality:
        return ""
    if not isinstance(quality, Mapping):
        raise TypeError("quality must be a mapping of output name -> figures")
    parts = ['<section id="quality"><h2>Model quality</h2>']
    for output, figures in quality.items():
        figures = _plain(figures)
        if not isinstance(figures, Mapping):
            raise TypeError(f"quality[{output!r}] must be a mapping of metric -> value")
        baseline = _plain(figures.get("baseline")) or {}
        scalars = [
            (k, v) for k, v in figures.items() if k not in ("baseline", "confusion") and v != {}
        ]
        parts.append(f'<div class="quality" data-output="{escape(str(output))}">')
        parts.append(f"<h3>{escape(str(output))}</h3><table class='facts'><thead><tr><th></th>")
        parts.append(("<th>baseline</th>" if baseline else "") + "<th>current</th></tr></thead>")
        for key, value in scalars:
            base = f"<td>{_cell(baseline.get(key, '-'))}</td>" if baseline else ""
            parts.append(
                f'<tr><th>{escape(str(key))}</th>{base}<td data-quality="{escape(str(key))}">'
                f"{_cell(value)}</td></tr>"
            )
        parts.append("</table>")
        confusion = _plain(figures.get("confusion"))
        if confusion:
            labels = [str(x) for x in confusion["labels"]]
            head = "".join(f"<th>{escape(x)}</th>" for x in labels)
            body = "".join(
                f"<tr><th>{escape(label)}</th>"
                + "".join(f"<td>{_cell(v)}</td>" for v in row)
                + "</tr>"
                for label, row in zip(labels, confusion["matrix"])
            )
            parts.append(
                '<table class="confusion"><caption>Confusion matrix: rows actual, columns '
                f"predicted</caption><thead><tr><th></th>{head}</tr></thead><tbody>{body}"
                "</tbody></table>"
            )
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)


def _summary(report: DriftReport, ordered: list[DriftRow]) -> str:
    limits: DriftThresholds = report.thresholds
    drifted = [r for r in ordered if r.drifted]
    features = [r for r in ordered if r.role == "feature"]
    outputs = [r for r in ordered if r.role == "output"]

    def of(rows: list[DriftRow], what: str) -> str:
        return f"{sum(r.drifted for r in rows)} of {len(rows)} {what}"

    tally: dict[str, int] = {}
    for r in ordered:
        tally[verdict(r)] = tally.get(verdict(r), 0) + 1
    state = "drift" if drifted else "ok"
    headline = (
        f"{len(drifted)} of {len(ordered)} columns drifted"
        if drifted
        else f"No drift in {len(ordered)} columns"
    )
    links = ", ".join(f'<a href="#{escape(anchor(r))}">{escape(r.name)}</a>' for r in drifted[:30])
    more = f" and {len(drifted) - 30} more" if len(drifted) > 30 else ""
    counts = " · ".join(f"{n} {escape(word)}" for word, n in tally.items())
    return (
        f'<section id="summary" class="summary {state}">'
        f'<p class="headline"><span class="verdict v-{state}">'
        f"{'DRIFT' if drifted else 'OK'}</span> <strong>{headline}</strong> "
        f"({of(features, 'features')}, {of(outputs, 'outputs')})</p>"
        + (f'<p class="drifted">Drifted: {links}{more}</p>' if drifted else "")
        + f"<p>Verdicts: {counts}.</p>"
        f'<p class="thresholds">Thresholds: a column drifted when PSI ≥ {limits.psi:g} or '
        f"KS ≥ {limits.ks:g} (numeric columns), once at least {limits.min_count:,} values "
        "were counted. PSI, KL and JS floor empty bins' shares; KS is read at the bin edges."
        "</p></section>"
    )


_CSS = """
:root{--base:#aab4bf;--cur:#1c5fb8;--drift:#b3261e;--ok:#2b7a3d;--few:#8a6d00;--none:#666;
--line:#d8dde3;--ink:#1d2329;--muted:#5b6670;--bg:#fff;--panel:#f6f8fa}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:16px 24px 48px;color:var(--ink);background:var(--bg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
h1{font-size:22px;margin:4px 0}
h2{font-size:17px;margin:20px 0 8px}
h3{font-size:15px;margin:10px 0 4px}
.meta{color:var(--muted);margin:0 0 12px}
.summary{border:1px solid var(--line);border-left:6px solid var(--ok);background:var(--panel);
padding:8px 14px;border-radius:4px}
.summary.drift{border-left-color:var(--drift)}
.summary p{margin:6px 0}
.headline{font-size:16px}
.verdict{display:inline-block;min-width:5.5em;text-align:center;font-weight:700;font-size:12px;
padding:1px 6px;border-radius:3px;border:1.5px solid currentColor;letter-spacing:.02em}
.v-drift{color:#fff;background:var(--drift);border-color:var(--drift)}
.v-ok{color:var(--ok)}
.v-few{color:var(--few);border-style:dashed}
.v-none{color:var(--none);border-style:dotted}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:18px 0 6px}
.controls input[type=search]{font:inherit;padding:4px 8px;min-width:16em;border:1px solid #9aa5b1;
border-radius:4px}
.controls button{font:inherit;font-size:13px;padding:3px 10px;border:1px solid #9aa5b1;
border-radius:4px;background:#fff;cursor:pointer}
#shown{color:var(--muted)}
.row{display:grid;grid-template-columns:minmax(9em,2fr) 10em 8.5em repeat(3,5.5em) 5.5em;
gap:6px;align-items:center}
.head{padding:4px 8px 4px 26px;border-bottom:2px solid var(--line);font-size:12px;
color:var(--muted);position:sticky;top:0;background:var(--bg);z-index:1}
.head button{all:unset;cursor:pointer;font-weight:600}
.head button[aria-sort]::after{content:" ▾"}
.head button[aria-sort=ascending]::after{content:" ▴"}
.head .num,.num{text-align:right;font-variant-numeric:tabular-nums}
details.col{border-bottom:1px solid var(--line)}
details.col>summary{list-style:none;cursor:pointer;padding:5px 8px 5px 26px;position:relative;
display:grid;grid-template-columns:minmax(9em,2fr) 10em 8.5em repeat(3,5.5em) 5.5em;gap:6px;
align-items:center}
details.col>summary::-webkit-details-marker{display:none}
details.col>summary::before{content:"▸";position:absolute;left:9px;color:var(--muted)}
details.col[open]>summary::before{content:"▾"}
details.col>summary:hover{background:var(--panel)}
details.col.drift>summary{border-left:4px solid var(--drift);padding-left:22px}
.name{font-weight:600;overflow-wrap:anywhere}
.kind{color:var(--muted);font-size:12px}
.body{padding:4px 8px 14px 26px}
.why{margin:2px 0 8px;color:var(--muted)}
.panels{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.chart{overflow-x:auto;max-width:100%;min-width:min(600px,100%)}
.bars rect.base{fill:var(--base);stroke:#6b7782;stroke-width:.6}
.bars rect.cur{fill:var(--cur)}
.bars .grid{stroke:var(--line);stroke-width:1}
.bars .tick{stroke:var(--muted);stroke-width:1}
.bars text{font-size:11px;fill:var(--ink)}
.bars text.axis{text-anchor:end;fill:var(--muted);font-size:10px}
.legend{margin:2px 0 0 44px;font-size:12px;color:var(--muted)}
.key{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin:0 4px 0 10px}
.key.base{background:var(--base);border:1px solid #6b7782}
.key.cur{background:var(--cur)}
table{border-collapse:collapse}
.facts{margin-bottom:8px;font-size:13px}
.facts th,.facts td{padding:2px 10px 2px 0;text-align:right;font-variant-numeric:tabular-nums}
.facts th{text-align:left;font-weight:600}
.facts td.note{text-align:left;color:var(--muted);font-size:12px}
.bintable summary{cursor:pointer;color:var(--muted);font-size:12px;margin-top:6px}
.bintable table,.confusion{font-size:12px;margin-top:4px}
.bintable td,.bintable th,.confusion td,.confusion th{border:1px solid var(--line);padding:2px 8px;
text-align:right;font-variant-numeric:tabular-nums}
.bintable td:first-child{text-align:left}
.confusion caption{text-align:left;color:var(--muted);font-size:12px}
.quality{display:inline-block;vertical-align:top;margin-right:32px}
footer{margin-top:24px;color:var(--muted);font-size:12px}
@media print{
body{max-width:none;padding:0;font-size:11px}
.facts,.why,.legend,.kind{font-size:10px}
.controls,.bintable,.head button::after{display:none}
.head{position:static}
details.col{break-inside:avoid}
details.col>summary::before,details.col[open]>summary::before{content:none}
.panels{flex-wrap:nowrap;gap:10px}
.chart{min-width:0;flex:1 1 auto;overflow:visible}
svg.bars{max-width:100%;height:auto}
.summary{break-after:avoid}
a{color:inherit;text-decoration:none}
}
"""

_JS = """
(function(){
var list=document.getElementById('columns');
var items=Array.prototype.slice.call(list.querySelectorAll('details.col'));
var search=document.getElementById('search'),shown=document.getElementById('shown');
var only=document.getElementById('only-drift');
function filter(){
var q=search.value.trim().toLowerCase(),k=0;
items.forEach(function(d){var hit=(!q||d.getAttribute('data-name').toLowerCase().indexOf(q)>=0)
&&(!only.checked||d.classList.contains('drift'));d.hidden=!hit;if(hit)k++;});
shown.textContent=k+' of '+items.length+' shown';}
search.addEventListener('input',filter);only.addEventListener('change',filter);
var buttons=Array.prototype.slice.call(document.querySelectorAll('button[data-sort]'));
function value(d,key){var v=d.getAttribute('data-'+key);
if(key==='name')return v.toLowerCase();return v===''?null:parseFloat(v);}
function sort(key,dir){
items.sort(function(a,b){var x=value(a,key),y=value(b,key);
if(x===y)return value(a,'rank')-value(b,'rank');
if(x===null)return 1;if(y===null)return -1;
return (x<y?-1:1)*(dir==='ascending'?1:-1);});
items.forEach(function(d){list.appendChild(d);});
buttons.forEach(function(b){if(b.getAttribute('data-sort')===key)b.setAttribute('aria-sort',dir);
else b.removeAttribute('aria-sort');});}
buttons.forEach(function(b){b.addEventListener('click',function(){
var key=b.getAttribute('data-sort'),cur=b.getAttribute('aria-sort');
var first=(key==='name'||key==='rank')?'ascending':'descending';
sort(key,cur===first?(first==='ascending'?'descending':'ascending'):first);});});
function openAll(open){items.forEach(function(d){d.open=open;});}
document.getElementById('expand').addEventListener('click',function(){openAll(true);});
document.getElementById('collapse').addEventListener('click',function(){openAll(false);});
var before=null;
window.addEventListener('beforeprint',function(){
before=items.map(function(d){return d.open;});openAll(true);});
window.addEventListener('afterprint',function(){
if(before)items.forEach(function(d,i){d.open=before[i];});before=null;});
filter();
})();
"""


def render(
    report: DriftReport,
    title: str = "Drift report",
    quality: Any = None,
    source: str | None = None,
    generated: _dt.datetime | None = None,
) -> str:
    """The whole page. ``source`` says where the counts came from (shown under the title)."""
    ordered = drift_order(report.rows)
    when = (generated or _dt.datetime.now(_dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    meta = f"Generated {when}" + (f" · {escape(source)}" if source else "")
    sections = "".join(section(row, rank) for rank, row in enumerate(ordered))
    head_row = (
        '<div class="row head" aria-hidden="false">'
        '<button type="button" data-sort="name">name</button><span>role · kind</span>'
        '<button type="button" data-sort="rank" aria-sort="ascending">verdict</button>'
        '<button type="button" class="num" data-sort="psi">PSI</button>'
        '<button type="button" class="num" data-sort="ks">KS</button>'
        '<button type="button" class="num" data-sort="js">JS</button>'
        '<button type="button" class="num" data-sort="n">n</button></div>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><p class="meta">{meta}</p></header>'
        f"{_summary(report, ordered)}{quality_block(quality)}"
        "<h2>Features and outputs, most drifted first</h2>"
        '<div class="controls"><input id="search" type="search" '
        'placeholder="Search by name" aria-label="Search by name">'
        '<label><input type="checkbox" id="only-drift"> drifted only</label>'
        '<button type="button" id="expand">Expand all</button>'
        '<button type="button" id="collapse">Collapse all</button>'
        f'<span id="shown">{len(ordered)} of {len(ordered)} shown</span></div>'
        f'{head_row}<div id="columns">{sections}</div>'
        "<footer>boxkite-middleware drift report. Shares are of the values counted into "
        "bins; missing values are shown apart. Click a header to sort, a row to open it."
        f"</footer><script>{_JS}</script></body></html>\n"
    )


def write(report: DriftReport, path: str | os.PathLike[str], **options: Any) -> None:
    """Write :func:`render`'s page to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(report, **options))
