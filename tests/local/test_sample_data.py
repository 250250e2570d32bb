"""The sample-data generator: what it writes, and that its truth matches a plain recount."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from spark_app.local.catalog import load_catalog
from spark_app.local.sample_data import SampleSpec, describe_day, read_spec, write_day

DAY = date(2026, 11, 19)
NEXT = date(2026, 11, 20)
SPEC = SampleSpec(events=20_000, advertisers=5, products_per_advertiser=200, seed=11)


def read_json_folder(folder: Path) -> list:
    lines = []
    for path in sorted(folder.glob("part-*.json.gz")):
        with gzip.open(path, "rt", encoding="ascii") as f:
            lines += [json.loads(line) for line in f]
    return lines


def utc_day(ts) -> date:
    if isinstance(ts, int):
        return datetime.fromtimestamp(ts / 1000, tz=timezone.utc).date()
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(timezone.utc).date()


def utc_hour(ts) -> int:
    if isinstance(ts, int):
        return datetime.fromtimestamp(ts / 1000, tz=timezone.utc).hour
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(timezone.utc).hour


def recount_views(events: list, day: date) -> Counter:
    """The truth computed the plain way: views of `day`, each event_id once."""
    seen = {}
    for e in events:
        if e["event_type"] == "product_view" and utc_day(e["ts"]) == day:
            seen[e["event_id"]] = (e["advertiser_id"], e["product_id"])
    return Counter(seen.values())


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("events")
    sample = write_day(root, DAY, SPEC)
    return root, sample, read_json_folder(root / "dt=2026-11-19"), read_json_folder(root / "dt=2026-11-20")


def test_day_folder_is_complete_and_next_day_folder_is_partial(written):
    root, sample, _, _ = written
    day_dir, next_dir = root / "dt=2026-11-19", root / "dt=2026-11-20"
    assert sorted(p.name for p in day_dir.glob("part-*")) == [f"part-0000{i}.json.gz" for i in range(4)]
    assert (day_dir / "_SUCCESS").exists()
    assert len(list(next_dir.glob("part-*.json.gz"))) == 4
    assert not (next_dir / "_SUCCESS").exists()
    assert len(sample.files) == 8


def test_truth_equals_a_recount_of_the_written_lines(written):
    _, sample, day_lines, next_lines = written
    assert recount_views(day_lines + next_lines, DAY) == Counter(sample.expected_views)
    assert sum(sample.expected_views.values()) == sample.counts["product_views"]


def test_shares_of_types_duplicates_late_and_next_day_events(written):
    _, sample, day_lines, next_lines = written
    everything = day_lines + next_lines
    in_day = [e for e in everything if utc_day(e["ts"]) == DAY]
    unique_in_day = {e["event_id"] for e in in_day}
    assert len(unique_in_day) == 20_000
    assert (len(in_day) - len(unique_in_day)) / 20_000 == pytest.approx(0.01, abs=0.004)
    late = [e for e in next_lines if utc_day(e["ts"]) == DAY]
    assert len({e["event_id"] for e in late}) / 20_000 == pytest.approx(0.02, abs=0.005)
    genuine_next = {e["event_id"] for e in next_lines if utc_day(e["ts"]) == NEXT}
    assert all(utc_hour(e["ts"]) < 6 for e in next_lines if utc_day(e["ts"]) == NEXT)
    assert len(genuine_next) / 20_000 == pytest.approx(0.05 * 0.98, abs=0.005)
    previous_day = [e for e in day_lines if utc_day(e["ts"]) < DAY]
    assert len(previous_day) / 20_000 == pytest.approx(0.02, abs=0.005)
    other = Counter(e["event_type"] for e in in_day if e["event_type"] != "product_view")
    assert set(other) == {"add_to_cart", "purchase", "search", "page_view"}
    assert sum(other.values()) / len(in_day) == pytest.approx(0.3, abs=0.02)


def test_values_look_like_production_events(written):
    _, _, day_lines, _ = written
    assert all(isinstance(e["advertiser_id"], int) for e in day_lines)
    assert all(re.fullmatch(r"sku-\d{6}", e["product_id"]) for e in day_lines)
    as_numbers = [e["ts"] for e in day_lines if isinstance(e["ts"], int)]
    assert len(as_numbers) / len(day_lines) == pytest.approx(0.1, abs=0.01)
    offsets = Counter(e["ts"][23:] for e in day_lines if isinstance(e["ts"], str))
    assert {"Z", "+00:00", "+02:00", "-05:00", "+05:30"} <= set(offsets)
    # a key per advertiser x product; some never viewed, a few viewed a lot
    views = Counter((e["advertiser_id"], e["product_id"]) for e in day_lines)
    top = views.most_common(10)
    assert sum(c for _, c in top) > 0.1 * len(day_lines)
    assert len(views) <= SPEC.product_keys


def test_catalog_share_and_matched_truth(written):
    _, sample, _, _ = written
    assert len(sample.catalog_keys) == 800
    assert len(set(sample.catalog_keys)) == 800
    assert {a for a, _ in sample.catalog_keys} == {a for a, _ in sample.expected_views}
    rates = sample.expected_rates()
    catalog = set(sample.catalog_keys)
    some_adv = min(rates)
    mine = {k: v for k, v in sample.expected_views.items() if k[0] == some_adv}
    matched_views = sum(v for k, v in mine.items() if k in catalog)
    assert rates[some_adv]["total_products"] == len(mine)
    assert rates[some_adv]["matched_views"] == matched_views
    assert rates[some_adv]["match_rate"] == pytest.approx(matched_views / sum(mine.values()))


def test_same_seed_gives_the_same_bytes(tmp_path):
    small = SampleSpec(events=3000, seed=5)
    write_day(tmp_path / "a", DAY, small)
    write_day(tmp_path / "b", DAY, small)
    write_day(tmp_path / "c", DAY, SampleSpec(events=3000, seed=6))
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("part-*"))
    assert len(files) == 8
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    first = Path("dt=2026-11-19/part-00000.json.gz")
    assert (tmp_path / "a" / first).read_bytes() != (tmp_path / "c" / first).read_bytes()


def test_writing_the_next_day_keeps_both_truths_right(tmp_path):
    small = SampleSpec(events=4000, seed=3)
    first = write_day(tmp_path, DAY, small)
    second = write_day(tmp_path, NEXT, small)
    lines = sum(
        (read_json_folder(tmp_path / f"dt={d}") for d in ("2026-11-19", "2026-11-20", "2026-11-21")), []
    )
    assert recount_views(lines, DAY) == Counter(first.expected_views)
    assert recount_views(lines, NEXT) == Counter(second.expected_views)
    assert (tmp_path / "dt=2026-11-20" / "_SUCCESS").exists()
    # writing D again must not clobber the now complete D+1 folder
    before = (tmp_path / "dt=2026-11-20" / "part-00000.json.gz").read_bytes()
    write_day(tmp_path, DAY, small)
    assert (tmp_path / "dt=2026-11-20" / "part-00000.json.gz").read_bytes() == before


def test_describe_day_gives_the_truth_without_writing(tmp_path, written):
    _, sample, _, _ = written
    again = describe_day(tmp_path, DAY, SPEC)
    assert again.expected_views == sample.expected_views
    assert list(tmp_path.iterdir()) == []
    assert read_spec(written[0], DAY) == SPEC
    assert read_spec(tmp_path, DAY) is None


def test_parquet_variant_has_the_same_truth(tmp_path):
    small = SampleSpec(events=5000, seed=9)
    sample = write_day(tmp_path, DAY, small, fmt="parquet", files=2)
    paths = sorted(tmp_path.rglob("part-*.parquet"))
    assert len(paths) == 4
    table = pq.ParquetFile(paths[0]).read()  # the file's own columns (no dt= partition column)
    assert [str(t) for t in table.schema.types] == ["string", "string", "string", "int64", "string", "int64"]
    rows = []
    for p in paths:
        for r in pq.ParquetFile(p).read().to_pylist():
            r["ts"] = int(r["ts"]) if r["ts"].isdigit() else r["ts"]
            rows.append(r)
    assert recount_views(rows, DAY) == Counter(sample.expected_views)


def test_plain_json_without_gzip(tmp_path):
    write_day(tmp_path, DAY, SampleSpec(events=500), gzip=False, files=1)
    text = (tmp_path / "dt=2026-11-19" / "part-00000.json").read_text()
    assert text.count("\n") >= 500
    assert json.loads(text.splitlines()[0])["event_type"]


def test_load_catalog_creates_the_table_and_puts_every_key(dynamodb):
    keys = [(1001, f"sku-{i:06d}") for i in range(60)] + [(2002, "sku-000001")]
    assert load_catalog(dynamodb, "catalog_load_test", keys) == 61
    assert load_catalog(dynamodb, "catalog_load_test", keys) == 61  # again: same items, no error
    items = dynamodb.scan(TableName="catalog_load_test")["Items"]
    stored = sorted((int(i["advertiser_id"]["N"]), i["product_id"]["S"]) for i in items)
    assert stored == sorted(keys)
    dynamodb.delete_table(TableName="catalog_load_test")


def test_load_catalog_puts_each_advertisers_first_key_before_any_parallel_batch(dynamodb, catalog_table):
    # moto loses items when two first writes of one partition key race; see load_catalog.
    requests = []

    def record(params=None, **kwargs):
        (puts,) = params["RequestItems"].values()
        requests.append([int(p["PutRequest"]["Item"]["advertiser_id"]["N"]) for p in puts])

    dynamodb.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", record)
    keys = [(a, f"sku-{i}") for a in (7, 8, 9) for i in range(40)]

    assert load_catalog(dynamodb, catalog_table, keys) == 120

    assert requests[0] == [7, 8, 9] and all(len(r) == 25 for r in requests[1:-1])
    assert sorted(a for r in requests for a in r) == sorted(a for a, _ in keys)
    assert dynamodb.scan(TableName=catalog_table, Select="COUNT")["Count"] == 120


def test_a_drop_lowers_the_most_viewed_advertisers_match_rate_from_its_day_on(tmp_path):
    spec = SampleSpec(
        events=40_000, advertisers=5, products_per_advertiser=200, drop_advertisers=2, drop_from="2026-11-18"
    )
    plain = SampleSpec(events=40_000, advertisers=5, products_per_advertiser=200)
    rates = {d: describe_day(tmp_path, date(2026, 11, d), spec).expected_rates() for d in (17, 18, 19)}
    views = {a: r["total_views"] for a, r in rates[17].items()}
    first, second = sorted(views, key=views.get, reverse=True)[:2]
    assert rates[17] == describe_day(tmp_path, date(2026, 11, 17), plain).expected_rates()  # unchanged before
    # drop_share 0.4 of the views go to uncatalogued products: about 0.6 times the rate before
    assert rates[18][first]["match_rate"] < 0.7 * rates[17][first]["match_rate"]  # the first drops on 11-18
    assert abs(rates[18][second]["match_rate"] - rates[17][second]["match_rate"]) < 0.1
    assert rates[19][second]["match_rate"] < 0.7 * rates[17][second]["match_rate"]  # the second a day later
    write_day(tmp_path, date(2026, 11, 18), spec)
    assert read_spec(tmp_path, date(2026, 11, 18)) == spec  # the truth of a written day is recomputable
