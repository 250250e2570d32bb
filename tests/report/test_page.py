"""The report's page opened in a real headless Chromium: charts and tables render, nothing is fetched,
and on a phone-wide window the page fits its width (charts scale, wide tables scroll in their own box)."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser

import pytest

from tests.support import report_data as data
from tests.support.chromium import Chromium, png_size
from tests.support.paths import ROOT


@pytest.fixture(scope="module")
def page_file(pg_url, tmp_path_factory):
    data.seed(pg_url)
    folder = tmp_path_factory.mktemp("report-page")
    conf = data.write_conf(folder, pg_url)
    out = folder / "report.html"
    cmd = [
        sys.executable,
        "process_data.py",
        "report",
        "--pipeline",
        "catalog_match_rate",
        "--date",
        str(data.DAY),
        "--days",
        "7",
        "--conf",
        str(conf),
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def browser_page(page_file):
    with Chromium() as browser:
        page = browser.open(page_file.resolve().as_uri())
        yield page, browser


def test_the_page_renders_its_charts_and_tables(browser_page, page_file):
    page, _ = browser_page
    assert page.evaluate("document.querySelectorAll('svg.overall polyline').length") == 2  # split by the gaps
    assert page.evaluate("document.querySelectorAll('svg.overall rect.gap').length") == 2
    assert page.evaluate("document.querySelectorAll('table.troubled tbody tr').length") == 3
    assert page.evaluate("document.querySelectorAll('table.troubled svg.spark').length") == 3
    assert page.evaluate(
        "[...document.querySelectorAll('table.troubled tbody tr td:first-child')].map(td => td.textContent)"
    ) == ["5", "1", "2"]
    assert page.evaluate("document.querySelectorAll('table.products').length") == 3
    products = page.evaluate(
        "[...document.querySelectorAll('#adv-1 + .scroll > table tbody tr')]"
        ".map(tr => [...tr.cells].map(c => c.textContent))"
    )
    assert products == [["p-a", "25", "3 / 7"], ["p-b", "10", "1 / 7"], ["p-c", "5", "4 / 7"]]
    run = page.evaluate("document.querySelector('#run').innerText")
    assert data.QUARANTINE in run and data.WARNING in run and "later run of the day" in run
    width = page.evaluate("document.querySelector('svg.overall').getBoundingClientRect().width")
    assert width >= 720  # laid out at its size (plus borders), not collapsed


PHONE = 400  # CSS px: a small phone held upright


@pytest.fixture(scope="module")
def phone_page(page_file):
    with Chromium() as browser:
        yield browser.open(page_file.resolve().as_uri(), width=PHONE)


def test_on_a_phone_the_page_fits_the_window_and_wide_tables_scroll_in_their_own_box(phone_page, tmp_path):
    page = phone_page
    assert page.evaluate("window.innerWidth") == PHONE
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE  # no sideways scrolling of the page
    outside = page.evaluate(
        "[...document.querySelectorAll('main *')]"
        ".filter(e => !e.parentElement.closest('.scroll'))"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)"
        ".map(e => e.tagName + '.' + e.getAttribute('class'))"
    )
    assert outside == []  # nothing is cut off at the right edge, but inside a box that scrolls
    chart = page.evaluate(
        "(() => { const r = document.querySelector('svg.overall').getBoundingClientRect();"
        " return [r.left, r.right, r.height]; })()"
    )
    assert chart[0] >= 0 and chart[1] <= PHONE and chart[2] < 200  # scaled down with its width
    box = page.evaluate(
        "(() => { const b = document.querySelector('table.troubled').parentElement;"
        " return [b.className, getComputedStyle(b).overflowX, b.scrollWidth > b.clientWidth,"
        " b.getBoundingClientRect().right]; })()"
    )
    assert box[:3] == ["scroll", "auto", True] and box[3] <= PHONE  # wider than the phone: scrolls inside
    shot = page.screenshot(tmp_path / "report-phone.png")
    assert png_size(shot)[0] == PHONE  # the whole page is exactly as wide as the window


def test_a_screenshot_of_the_page_is_taken(browser_page, tmp_path):
    page, _ = browser_page
    shot = page.screenshot(tmp_path / "report.png")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a rendered page, not a blank one


def test_the_browser_requested_nothing_but_the_file(browser_page, page_file):
    page, _ = browser_page
    assert page.requests == [page_file.resolve().as_uri()]


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list = []
        self.refs: list = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.refs += [v for k, v in attrs if k in ("src", "href", "srcset", "action", "xlink:href") and v]


def test_the_page_holds_no_script_and_links_only_within_itself(page_file):
    text = page_file.read_text()
    refs = _Refs()
    refs.feed(text)
    assert "script" not in refs.tags and "link" not in refs.tags and "iframe" not in refs.tags
    assert refs.refs and all(r.startswith("#") for r in refs.refs)
    assert "url(" not in text and "@import" not in text
