"""The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

Every value from the database is escaped; the page links to nothing outside itself (anchors
within the page only), so it opens the same from a disk, a mail attachment or an offline laptop.
It fits a phone's width: the window chart scales with the page, and every table sits in a box
of its own that scrolls sideways when the table is wider than the screen (the page never does).
"""

from __future__ import annotations

from html import escape
from typing import List, Optional

from spark_app.report.charts import rate_chart
from spark_app.report.model import Advertiser, Report, RunInfo, date_ranges

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2933;
background:#f5f7fa}
main{max-width:1080px;margin:0 auto;padding:20px 24px 40px;overflow-wrap:break-word}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}h3{font-size:15px;margin:18px 0 6px}
.sub{color:#52606d;margin:0 0 16px}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{background:#fff;border:1px solid #d9e2ec;border-radius:6px;padding:10px 14px;min-width:140px}
.card b{display:block;font-size:20px}.card span{color:#52606d;font-size:12px}
.bad{color:#b42318}.good{color:#0e7c3a}
.scroll{overflow-x:auto;margin:6px 0}
table{border-collapse:collapse;background:#fff;border:1px solid #d9e2ec;width:100%}
table.run td{overflow-wrap:anywhere}
th,td{padding:4px 8px;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:middle}
th{background:#eef2f6;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
svg{background:#fff;border:1px solid #d9e2ec;border-radius:4px}
svg.chart{display:block;width:100%;max-width:720px;height:auto}
svg.spark{border:none;background:transparent}
.line{fill:none;stroke:#2f6fde;stroke-width:2}.point{fill:#2f6fde}
.grid{stroke:#e4e7eb}.reference{stroke:#e8590c;stroke-dasharray:4 3}
.gap{fill:#f3c6c6;fill-opacity:.55}
.label{font-size:10px;fill:#52606d}
.note{color:#52606d;font-size:12px}
.warn{background:#fff4e5;border:1px solid #f6c177;padding:6px 10px;border-radius:4px}
details{margin:4px 0 12px}summary{cursor:pointer;color:#2f6fde}
@media (max-width:600px){main{padding:14px 10px 32px}svg.chart .label{font-size:16px}}
"""


def _pct(v: Optional[float]) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def _num(v: Optional[int]) -> str:
    return "-" if v is None else f"{v:,}"


def _scroll(table: str) -> str:
    """A table in a box of its own that scrolls sideways when the table is wider than the screen."""
    return f'<div class="scroll">{table}</div>'


def render(report: Report) -> str:
    body = [
        _header(report),
        _glance(report),
        _troubled(report),
        _products(report),
        _run(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(report.pipeline)} report {report.day}</title>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{CSS}</style></head><body><main>" + "".join(body) + "</main></body></html>\n"
    )


def _header(r: Report) -> str:
    s = r.settings
    return (
        f"<h1>Catalog health: {escape(r.pipeline)} on {r.day}</h1>"
        f'<p class="sub">Window {r.days[0]} to {r.day} ({len(r.days)} days). In trouble: match rate below '
        f"{_pct(s.min_match_rate)}, or more than {s.max_drop_points:g} points below the advertiser's own "
        "median over the window's earlier days; ranked by the views they lose (unmatched views).</p>"
    )


def _glance(r: Report) -> str:
    t = r.today
    median = r.trailing_median
    rate_class = "bad" if median is not None and t.match_rate is not None and t.match_rate < median else ""
    cards = [
        (_num(t.advertisers), "advertisers", ""),
        (_num(t.total_views), "views", ""),
        (_num(t.matched_views), "matched views", ""),
        (_pct(t.match_rate), "match rate", rate_class),
        (_pct(median), "trailing median of the window", ""),
        (_num(r.troubled_count), "advertisers in trouble", "bad" if r.troubled_count else "good"),
    ]
    html = ['<section id="glance"><h2>The day at a glance</h2><div class="cards">']
    html += [
        f'<div class="card"><b class="{c}">{escape(v)}</b><span>{escape(label)}</span></div>'
        for v, label, c in cards
    ]
    html.append("</div><h3>Overall match rate over the window</h3>")
    html.append(
        rate_chart(
            r.days,
            [d.match_rate for d in r.totals],
            [not d.published for d in r.totals],
            "overall match rate per day",
            reference=median,
            reference_label="trailing median",
            css_class="chart overall",
        )
    )
    if r.gaps:
        html.append(
            f'<p class="note">Shaded days had no successful run (gaps, not zero): '
            f"{date_ranges(r.gaps)}.</p>"
        )
    html.append("</section>")
    return "".join(html)


def _troubled(r: Report) -> str:
    html = [
        f'<section id="trouble"><h2>Catalogs in trouble ({r.troubled_count:,}; '
        f"{r.troubled_unmatched_views:,} views lost)</h2>"
    ]
    if not r.troubled:
        return "".join(html + ['<p class="good">No advertiser is in trouble on this day.</p></section>'])
    if r.troubled_count > len(r.troubled):
        html.append(f'<p class="note">The {len(r.troubled)} losing the most views are shown.</p>')
    html.append(
        '<div class="scroll"><table class="troubled"><thead><tr><th>advertiser</th>'
        '<th class="n">unmatched views</th><th class="n">views</th><th class="n">match rate</th>'
        '<th class="n">median before</th><th>why</th><th>match rate over the window</th></tr></thead><tbody>'
    )
    gaps = [d in r.gaps for d in r.days]
    for a in r.troubled:
        chart = rate_chart(
            r.days,
            a.series,
            gaps,
            f"advertiser {a.advertiser_id} match rate",
            width=220,
            height=56,
            reference=a.median,
            css_class="spark",
            axes=False,
        )
        html.append(
            f'<tr><td><a href="#adv-{a.advertiser_id}">{a.advertiser_id}</a></td>'
            f'<td class="n">{a.unmatched_views:,}</td><td class="n">{a.total_views:,}</td>'
            f'<td class="n bad">{_pct(a.match_rate)}</td><td class="n">{_pct(a.median)}</td>'
            f"<td>{escape('; '.join(a.reasons))}</td><td>{chart}</td></tr>"
        )
    html.append("</tbody></table></div></section>")
    return "".join(html)


def _products(r: Report) -> str:
    if not r.troubled:
        return ""
    html = [
        '<section id="products"><h2>Products to add</h2>'
        f'<p class="note">Per advertiser in trouble: the unmatched products with the most views on {r.day} '
        f"(at most {r.settings.top_products}), and on how many of the window's {len(r.days)} days each was "
        "viewed and not in the catalog.</p>"
    ]
    for a in r.troubled:
        html.append(_advertiser_products(r, a))
    html.append("</section>")
    return "".join(html)


def _advertiser_products(r: Report, a: Advertiser) -> str:
    head = (
        f'<h3 id="adv-{a.advertiser_id}">Advertiser {a.advertiser_id}: '
        f"{a.unmatched_views:,} unmatched views, "
        f"match rate {_pct(a.match_rate)}</h3>"
    )
    if not a.products:
        return head + '<p class="note">No product rows of the day are stored (partition pruned?).</p>'
    rows = "".join(
        f'<tr><td>{escape(p.product_id)}</td><td class="n">{p.views:,}</td>'
        f'<td class="n">{p.unmatched_days} / {len(r.days)}</td></tr>'
        for p in a.products
    )
    return head + _scroll(
        '<table class="products"><thead><tr><th>product</th><th class="n">views on the day</th>'
        f'<th class="n">days viewed and unmatched</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _run(r: Report) -> str:
    run = r.run
    counts = run.counts
    html = ['<section id="run"><h2>The run behind the numbers</h2>']
    if r.latest_run.run_id != run.run_id:
        latest = r.latest_run
        html.append(
            f'<p class="warn">A later run of the day ({escape(latest.run_id)}) is {escape(latest.status)}'
            f"{': ' + escape((latest.error or '').splitlines()[0]) if latest.error else ''}; "
            "the numbers are those of the run below.</p>"
        )
    items = [
        ("run", run.run_id),
        ("status", run.status),
        ("finished", str(run.finished_at or "-")),
        ("lines read", _num(run.rows_in)),
        ("rejected", _num(run.rows_rejected)),
        ("detail rows published", _num(run.rows_out)),
        ("quarantine", run.quarantine_path or ("none (no rejected lines)" if not run.rows_rejected else "-")),
    ]
    items += [
        (k.replace("_", " "), _num(v)) for k, v in counts.items() if k not in ("lines_read", "rejected")
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in items)
    html.append(_scroll(f'<table class="run"><tbody>{rows}</tbody></table>'))
    html.append(_quality(r, run))
    html.append(_days_table(r))
    html.append("</section>")
    return "".join(html)


def _quality(r: Report, run: RunInfo) -> str:
    warnings = run.quality_warnings
    html = [f"<h3>Quality warnings ({len(warnings)})</h3>"]
    if warnings:
        html.append('<ul class="warnings">' + "".join(f"<li>{escape(w)}</li>" for w in warnings) + "</ul>")
    else:
        html.append('<p class="note">None.</p>')
    if r.quality:
        rows: List[str] = []
        for q in r.quality:
            change = (
                "-"
                if q.trailing_mean in (None, 0) or q.value is None
                else f"{(q.value / q.trailing_mean - 1) * 100:+.1f}%"
            )  # type: ignore[operator]
            rows.append(
                f"<tr><td>{escape(q.table)}</td><td>{escape(q.name)}</td><td>{escape(q.instance)}</td>"
                f'<td class="n">{_fmt(q.value)}</td><td class="n">{_fmt(q.trailing_mean)}</td>'
                f'<td class="n">{change}</td></tr>'
            )
        html.append(
            f"<details><summary>Quality metrics of the day ({len(rows)})</summary>"
            + _scroll(
                '<table class="quality"><thead><tr><th>table</th><th>metric</th><th>column</th>'
                '<th class="n">value</th><th class="n">mean before</th><th class="n">change</th></tr></thead>'
                f"<tbody>{''.join(rows)}</tbody></table>"
            )
            + "</details>"
        )
    return "".join(html)


def _fmt(v: Optional[float]) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"


def _days_table(r: Report) -> str:
    rows = []
    for t in reversed(r.totals):
        state = "published" if t.published else "no successful run"
        cls = "" if t.published else ' class="bad"'
        rows.append(
            f'<tr><td>{t.day}</td><td{cls}>{state}</td><td class="n">{_num(t.advertisers)}</td>'
            f'<td class="n">{_num(t.total_views)}</td><td class="n">{_pct(t.match_rate)}</td></tr>'
        )
    table = (
        '<table class="days"><thead><tr><th>day</th><th>state</th><th class="n">advertisers</th>'
        '<th class="n">views</th><th class="n">match rate</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return f"<details><summary>Days of the window</summary>{_scroll(table)}</details>"
