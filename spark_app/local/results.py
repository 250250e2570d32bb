"""What `make run` prints after the job: the day's match rates against the sample's truth.

Reads PostgreSQL with psycopg2 directly (no Spark), so it works after a failed job too.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional

from spark_app.config import resolve_path
from spark_app.local.sample_data import describe_day, read_spec

if TYPE_CHECKING:
    from spark_app.local.stack import Stack

PIPELINE = "catalog_match_rate"


def expected_rates(stack: Stack, day: date) -> Optional[Dict[int, Dict[str, float]]]:
    """What the generated sample says the day's match rates are; None for data not generated here."""
    spec = read_spec(stack.events_root, day)
    return describe_day(stack.events_root, day, spec).expected_rates() if spec else None


RATE_COLUMNS = ("total_products", "matched_products", "total_views", "matched_views", "match_rate")


def print_report(stack: Stack, day: date, say=print) -> None:
    """The day's published match rates, the last run's status, and where everything lives."""
    try:
        runs, rates = fetch_result(stack, day)
    except Exception as exc:  # the job may have failed before creating the tables
        say(f"\n(could not read the results from PostgreSQL: {str(exc).strip().splitlines()[0]})")
        runs, rates = [], []
    if runs:
        status, error = runs[0]
        say(f"\nlast run of {day}: {status}" + (f" ({error.splitlines()[0]})" if error else ""))
    say(f"\n== advertiser_match_rates for {day}: {len(rates)} advertisers")
    if rates:
        say(format_rates(rates, expected_rates(stack, day)))
    say(where_things_are(stack))
    say(look_around(stack))


def fetch_result(stack: Stack, day: date):
    import psycopg2

    schema = stack.cfg.postgres.schema
    url = stack.cfg.postgres.url.replace("+psycopg2", "")
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f'SELECT status, error FROM "{schema}".pipeline_runs WHERE pipeline = %s AND day = %s '
                "ORDER BY started_at DESC LIMIT 1",
                (PIPELINE, day),
            )
            runs = cur.fetchall()
            cur.execute(
                f"SELECT advertiser_id, {', '.join(RATE_COLUMNS)} "
                f'FROM "{schema}".advertiser_match_rates WHERE day = %s ORDER BY advertiser_id',
                (day,),
            )
            rates = cur.fetchall()
    finally:
        conn.close()
    return runs, rates


def format_rates(rows: List[tuple], expected: Optional[Dict[int, Dict[str, float]]]) -> str:
    """A text table; the last column says whether each row equals the sample data's truth."""
    headers = ["advertiser_id", "products", "matched", "views", "matched_views", "match_rate"]
    if expected is not None:
        headers.append("vs sample truth")
    body = []
    for adv, products, matched, views, matched_views, rate in rows:
        cells = [str(adv), f"{products:,}", f"{matched:,}", f"{views:,}", f"{matched_views:,}", f"{rate:.4f}"]
        if expected is not None:
            cells.append(_compare(expected.get(adv), (products, matched, views, matched_views, rate)))
        body.append(cells)
    if expected is not None:
        missing = sorted(set(expected) - {r[0] for r in rows})
        body += [[str(a), "-", "-", "-", "-", "-", "MISSING"] for a in missing]
    widths = [max(len(c) for c in col) for col in zip(headers, *body)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    lines = [fmt(headers), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]
    if expected is not None:
        bad = sum(1 for b in body if b[-1] != "ok")
        lines.append(
            "all rows equal the sample's truth" if not bad else f"{bad} row(s) differ from the truth"
        )
    return "\n".join(lines)


def _compare(want: Optional[Dict[str, float]], got: tuple) -> str:
    if want is None:
        return "UNEXPECTED"
    exact = [int(want[c]) for c in RATE_COLUMNS[:-1]] == [int(g) for g in got[:4]]
    if exact and abs(want["match_rate"] - got[4]) < 1e-9:
        return "ok"
    return (
        "expected "
        + ", ".join(f"{int(want[c]):,}" for c in RATE_COLUMNS[:-1])
        + f", {want['match_rate']:.4f}"
    )


def where_things_are(stack: Stack) -> str:
    ev = stack.cfg.events
    root = ev.path if stack.events_in_s3 else str(stack.events_root)
    quarantine = ev.quarantine_path if ev and ev.quarantine_path else f"{root}/_quarantine"
    sample = [f"sample days   {stack.events_root}   (uploaded to moto's S3)"] if stack.events_in_s3 else []
    return "\n".join(
        [
            "",
            "== where things are",
            f"events        {root}",
            *sample,
            f"quarantine    {resolve_path(quarantine)}",
            f"PostgreSQL    {stack.cfg.postgres.url}   (data and server.log in {stack.pg.data_dir})",
            f"DynamoDB      {stack.cfg.dynamodb.endpoint_url} table {stack.cfg.dynamodb.table} (in memory)",
            *_s3_line(stack),
        ]
    )


def look_around(stack: Stack) -> str:
    """After `run`: how to keep the services up and open psql."""
    return "\n".join(
        [
            "to look around: make services   (keeps PostgreSQL and moto up, with the sample days), then",
            f"               {psql_command(stack)}",
            "               make stop        (stops them)",
        ]
    )


def psql_command(stack: Stack) -> str:
    """psql (the pgserver wheel's) on the stack's database."""
    psql = Path(_pg_bin_dir()) / "psql" if _pg_bin_dir() else "psql"
    return f"{psql} {stack.cfg.postgres.url}"


def _s3_line(stack: Stack) -> List[str]:
    if not stack.events_in_s3 or stack.cfg.s3 is None:
        return []
    return [f"S3            {stack.cfg.s3.endpoint_url} (moto, in memory)"]


def _pg_bin_dir() -> Optional[str]:
    try:
        from pgserver._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return str(POSTGRES_BIN_PATH)
