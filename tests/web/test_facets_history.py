"""The sidebar's metadata facets and the query bar's history, in a real browser: a facet
value narrows the query (AND-ed, written as query text, kept in the URL) to exactly the
API's count; a recent query runs again from the dropdown."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.web.conftest import EVIL, N_ITEMS, Site, shoot

pw = __import__("pytest").importorskip("playwright.sync_api")
expect = pw.expect


def _total(site: Site, query: str, dataset: str | None = None) -> int:
    return site.service.query_items(dataset or site.ds, query, page_size=1,
                                    with_total=True)["total"]


def _url_query(page: Any) -> str:
    return parse_qs(urlparse(page.url).query).get("q", [""])[0]


def _wait_for_query(page: Any, query: str) -> None:
    """Until the view's URL holds `query` (pushed once the server has read it)."""
    page.wait_for_url(lambda url: parse_qs(urlparse(url).query).get("q", [""])[0] == query)


def _facet(page: Any, field: str, text: str) -> Any:
    return page.locator(f'.facet[data-field="{field}"] .facet-value').filter(
        has=page.get_by_text(text, exact=True))


def _run(page: Any, query: str) -> None:
    """Run `query` from the query bar and wait until the view (its URL) shows it."""
    page.fill("#query", query)
    page.press("#query", "Enter")
    _wait_for_query(page, query)
    expect(page.locator("#result-count")).to_contain_text("result")


def test_facet_values_filter_the_grid(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.wait_for_selector(".facet")
    expect(page.locator("#facets-note")).to_have_text("in dataset")
    split = page.locator('.facet[data-field="split"] .facet-value')
    assert split.all_inner_texts() == ["train\n30", "val\n10"]
    _facet(page, "split", "val").click()
    val = 'metadata.split = "val"'
    _wait_for_query(page, val)
    expect(page.locator(".tile")).to_have_count(_total(site, val))
    assert page.input_value("#query") == val
    # Now the counts are the result's own (it is small), and a second value is AND-ed.
    expect(page.locator("#facets-note")).to_have_text("in these results")
    expect(page.locator('.facet[data-field="split"] .facet-value')).to_have_count(1)
    first = page.locator('.facet[data-field="index"] .facet-value').first
    condition = first.get_attribute("data-condition")
    assert re.fullmatch(r"metadata\.index >= 0 and metadata\.index < [\d.]+", condition)
    count = int(first.locator(".n").inner_text())
    first.click()
    both = f"{val} and {condition}"
    expect(page.locator("#query")).to_have_value(both)
    _wait_for_query(page, both)
    expect(page.locator(".tile")).to_have_count(_total(site, both))
    assert count == _total(site, both) > 0
    shoot(page, "facets")
    # Back to the previous view: the URL held it.
    page.go_back()
    expect(page.locator("#query")).to_have_value(val)
    expect(page.locator(".tile")).to_have_count(_total(site, val))
    assert not page.js_errors


def test_a_facet_keeps_order_and_limit_last_and_brackets_an_or(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.wait_for_selector(".facet")
    # Every item is in the result, so the counts shown are the dataset's (and the same).
    # Keywords inside a string are not the query's own.
    head = 'has(label = "dog") or metadata.index < 3 and metadata.split != "or order by limit 1"'
    _run(page, f"{head} order by metadata.index desc limit 30")
    _facet(page, "split", "train").click()
    expected = f'({head}) and metadata.split = "train" order by metadata.index desc limit 30'
    expect(page.locator("#query")).to_have_value(expected)
    expect(page.locator(".tile")).to_have_count(_total(site, expected))
    refs = page.locator(".tile .caption").all_inner_texts()
    assert refs == sorted(refs, reverse=True)


def test_facets_of_markup_metadata_are_text(page: Any, site: Site) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{site.url}/datasets/{site.evil}")
    page.wait_for_selector(".facet")
    assert page.locator(".facet-name").inner_text() == EVIL
    assert page.locator("#facets img").count() == 0
    page.locator(".facet-value").click()
    query = f'metadata."{EVIL}" = "{EVIL}"'
    expect(page.locator("#query")).to_have_value(query)
    expect(page.locator(".tile")).to_have_count(_total(site, query, site.evil))
    assert _total(site, query, site.evil) == 1
    assert not dialogs and not page.js_errors


def test_history_runs_a_recent_query_again(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.wait_for_selector(".tile")
    page.locator("#history-toggle").click()
    expect(page.locator("#history")).to_contain_text("No recent queries yet.")
    page.keyboard.press("Escape")
    dogs, cars = 'has(label = "dog")', 'has(label = "car")'
    _run(page, dogs)
    expect(page.locator(".tile")).to_have_count(_total(site, dogs))
    _run(page, cars)
    expect(page.locator(".tile")).to_have_count(_total(site, cars))
    page.fill("#query", "count() >")  # an error: not remembered
    page.press("#query", "Enter")
    expect(page.locator("#query-status.error")).to_be_visible()
    page.locator("#history-toggle").click()
    entries = page.locator("#history .history-entry")
    expect(entries).to_have_text([cars, dogs])
    shoot(page, "query-history")
    entries.filter(has_text=dogs).click()
    expect(page.locator("#history")).to_be_hidden()
    _wait_for_query(page, dogs)
    expect(page.locator("#query")).to_have_value(dogs)
    expect(page.locator(".tile")).to_have_count(_total(site, dogs))
    # The query just run again is first, once; the list survives a reload (localStorage).
    page.reload()
    page.wait_for_selector(".tile")
    page.focus("#query")
    page.keyboard.press("ArrowDown")
    expect(entries).to_have_text([dogs, cars])
    expect(entries.first).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator("#query")).to_have_value(cars)
    expect(page.locator(".tile")).to_have_count(N_ITEMS // 2)
    assert not page.js_errors


# (query in the bar, condition) -> the query a facet click runs.
NARROWED = [
    ("", 'metadata.split = "val"', 'metadata.split = "val"'),
    ('has(label = "car")', "metadata.index = 3", 'has(label = "car") and metadata.index = 3'),
    ("a = 1 OR b = 2 LIMIT 5", "c = 3", "(a = 1 OR b = 2) and c = 3 LIMIT 5"),
    ("(a = 1 or b = 2) order  by metadata.index", "c = 3",
     "(a = 1 or b = 2) and c = 3 order  by metadata.index"),
    ('metadata.t = "a \\" or b" and metadata.limit = 2', "c = 3",
     'metadata.t = "a \\" or b" and metadata.limit = 2 and c = 3'),
    ("not metadata.order = 1", "c = 3", "not metadata.order = 1 and c = 3"),
    ("x = 1 and c = 3", "c = 3", "x = 1 and c = 3"),  # already there
    ("order by metadata.index desc", "c = 3", "c = 3 order by metadata.index desc"),
]


def test_facet_conditions_are_query_text(page: Any, site: Site) -> None:
    """The page's own query-text helpers (static/querytext.js), run in the browser; every
    condition they write for a metadata value parses on the server."""
    page.goto(f"{site.url}/datasets/{site.ds}")
    page.wait_for_selector(".tile")
    helpers = "() => import('/static/querytext.js')"
    got = page.evaluate(f"""async (cases) => {{
        const q = await ({helpers})();
        return cases.map(([query, condition]) => q.andCondition(query, condition));
    }}""", [[a, b] for a, b, _ in NARROWED])
    assert got == [want for _, _, want in NARROWED]
    fields = page.evaluate(f"""async () => {{
        const q = await ({helpers})();
        return [["split", "val"], ["odd key", 'say "hi"\\n'], ["limit", 3], ["or", true],
                ["x-y_1", null], ["{EVIL}", -0.5]].map(([k, v]) =>
            `${{q.metadataField(k)}} = ${{q.literal(v)}}`);
    }}""")
    assert fields[:3] == ['metadata.split = "val"', 'metadata."odd key" = "say \\"hi\\"\\n"',
                          'metadata."limit" = 3']
    for condition in fields:
        assert site.service.describe_query(site.ds, condition)["valid"], condition
