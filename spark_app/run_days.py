"""What a run is asked for on the command line: a known pipeline and its days (one, or a backfill range).

Runs on the driver (process_data.py's arguments) and on the deploy side: deploy.py checks a
launch's pipeline and days with the same code, so it refuses, before anything is started, exactly
what the job would refuse once its cluster is up. The pipelines themselves live in `pipelines/`
(one module per name here; the library never imports them).
"""

from __future__ import annotations

import argparse
import re
from datetime import date, timedelta
from typing import List, Optional

from spark_app.errors import ConfigError

PIPELINES = ("catalog_match_rate",)  # the modules of pipelines/ that process_data.py --pipeline runs
MAX_BACKFILL_DAYS = 366
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def _month_days(year: int, month: int) -> int:
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 29 if month == 2 and leap else (28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31)


def check_pipeline(name: str) -> str:
    """The name, if it is a known pipeline; else ConfigError naming the known ones."""
    if name not in PIPELINES:
        raise ConfigError(f"--pipeline: unknown pipeline {name!r} (known: {', '.join(PIPELINES)})")
    return name


def parse_day(text: str) -> date:
    """A day written YYYY-MM-DD; the error says whether the form or the day itself is wrong."""
    if not _DAY.fullmatch(text):
        raise ConfigError(f"not a date (YYYY-MM-DD): {text!r}")
    year, month, day = (int(part) for part in text.split("-"))
    if year < 1:
        raise ConfigError(f"no such day: {text} (years start at 0001)")
    if not 1 <= month <= 12:
        raise ConfigError(f"no such day: {text} (months run from 01 to 12)")
    last = _month_days(year, month)
    if not 1 <= day <= last:
        raise ConfigError(f"no such day: {text} ({_MONTHS[month - 1]} has {last} days in {year})")
    return date(year, month, day)


def day_argument(text: str) -> date:
    """`parse_day` as an argparse type: its message becomes the command's one-line error (exit 2)."""
    try:
        return parse_day(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_day_options(parser: argparse.ArgumentParser, backfill: bool = True) -> None:
    """--date, and with `backfill` --from/--to: the same options, help and checks in every command."""
    parser.add_argument("--date", type=day_argument, required=not backfill, metavar="DAY",
                        help="the day, YYYY-MM-DD")
    if backfill:
        parser.add_argument("--from", dest="date_from", type=day_argument, metavar="DAY",
                            help=f"first day of a backfill (at most {MAX_BACKFILL_DAYS} days)")
        parser.add_argument("--to", dest="date_to", type=day_argument, metavar="DAY",
                            help="last day of a backfill")


def days_to_run(
    day: Optional[date], date_from: Optional[date] = None, date_to: Optional[date] = None
) -> List[date]:
    """The day, or the consecutive days of a backfill; refused (ConfigError) before anything starts."""
    if day and (date_from or date_to):
        raise ConfigError("--date and --from/--to exclude each other")
    if day:
        return [day]
    if not (date_from and date_to):
        raise ConfigError("give --date D, or --from D1 --to D2 for a backfill")
    if date_to < date_from:
        raise ConfigError(f"--to {date_to} is before --from {date_from}")
    n = (date_to - date_from).days + 1
    if n > MAX_BACKFILL_DAYS:
        raise ConfigError(f"a backfill of {n} days is over the limit of {MAX_BACKFILL_DAYS}")
    return [date_from + timedelta(days=i) for i in range(n)]
