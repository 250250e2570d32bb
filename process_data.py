"""Entry point of the daily jobs: `spark-submit process_data.py ...` on EMR, or plain `python`.

    process_data.py --pipeline catalog_match_rate --date 2026-11-19 --conf conf/local.yaml
    process_data.py --pipeline catalog_match_rate --from 2026-11-01 --to 2026-11-07 --conf ...
    process_data.py quality --pipeline catalog_match_rate --date 2026-11-19 --conf ...
    process_data.py suggest --pipeline catalog_match_rate --date 2026-11-19 --conf ...
    process_data.py report --pipeline catalog_match_rate --date 2026-11-19 --conf ... [--days 28]
                           [--out FILE] [--csv DIR]
    process_data.py prune --conf ... [--dry-run]
    process_data.py db-upgrade --conf ...

Arguments and configuration are checked before Spark starts; `report`, `prune` and `db-upgrade`
read or change PostgreSQL only and start no Spark. Exit codes: 0 success,
1 failure, 2 bad arguments or configuration, 3 input not ready (retry later), 4 data-quality
gate failed, 5 PostgreSQL, 6 DynamoDB, 7 source.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from datetime import date
from typing import List, Optional, Sequence

from spark_app import run_days
from spark_app.config import Config, load_config
from spark_app.errors import ConfigError, PipelineError, from_executor_failure
from spark_app.run_days import PIPELINES, add_day_options, check_pipeline, day_argument

COMMANDS = ("run", "quality", "suggest", "report", "prune", "db-upgrade")

log = logging.getLogger("process_data")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command and its options; with no command, `run` (the options alone: `--pipeline ...`)."""
    argv = list(argv)
    parser = argparse.ArgumentParser(prog="process_data.py", description=__doc__.split("\n\n")[0],
                                     epilog="Without a command, the options are run's: "
                                            "process_data.py --pipeline P --date D --conf FILE")
    if argv and argv[0] not in COMMANDS + ("-h", "--help"):
        argv.insert(0, "run")
    sub = parser.add_subparsers(dest="command", required=True)
    pipelines = f"the pipeline, one of: {', '.join(PIPELINES)}"
    for name, helptext in [
        ("run", "run the pipeline for a day or a range of days"),
        ("quality", "compute the day's tables and run the data-quality checks alone (writes nothing)"),
        ("suggest", "profile the day's tables and print suggested constraints"),
    ]:
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--pipeline", required=True, help=pipelines)
        p.add_argument("--conf", required=True, help="YAML config file")
        add_day_options(p, backfill=name == "run")
        if name == "run":
            p.add_argument("--allow-shrink", action="store_true",
                           help="publish a day far smaller than its history or the published day "
                                "(the shrink guard becomes a warning; the summary says so)")
    p = sub.add_parser("report", help="write the catalog health report of a day (HTML; PostgreSQL only)")
    p.add_argument("--pipeline", required=True, help=pipelines)
    p.add_argument("--conf", required=True, help="YAML config file")
    p.add_argument("--date", type=day_argument, required=True, help="the report's day, YYYY-MM-DD")
    p.add_argument("--days", type=int, help="days in the window, ending on --date (default: report.days)")
    p.add_argument("--out", help="the HTML file or s3:// key (default: <pipeline>-report-<date>.html)")
    p.add_argument("--csv", dest="csv_dir",
                   help="folder (or s3:// prefix) for one CSV of products to add per advertiser in trouble")
    p = sub.add_parser("prune", help="drop product_views partitions older than postgres.retention_days")
    p.add_argument("--conf", required=True)
    p.add_argument("--dry-run", action="store_true", help="list what would be dropped, drop nothing")
    p = sub.add_parser("db-upgrade", help="apply the PostgreSQL schema migrations")
    p.add_argument("--conf", required=True)
    if not argv:  # no command: every command and what it does, not one command's usage
        parser.print_help(sys.stderr)
        parser.exit(2)
    return parser.parse_args(argv)


def days_to_run(args: argparse.Namespace) -> List[date]:
    """The day, or the consecutive days of a backfill; checked before anything starts."""
    return run_days.days_to_run(args.date, getattr(args, "date_from", None), getattr(args, "date_to", None))


def main(argv: Optional[Sequence[str]] = None) -> int:
    _setup_logging()
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse already printed the message (or the help)
        return ConfigError.exit_code if exc.code else 0
    try:
        cfg = apply_overrides(load_config(args.conf), args)
        if args.command == "db-upgrade":
            return _db_upgrade(cfg)
        if args.command == "report":
            return _report(args, cfg)
        if args.command == "prune":
            return _prune(args, cfg)
        pipeline = _load_pipeline(args.pipeline)
        days = days_to_run(args)
        from spark_app.events.root import check_events_root

        check_events_root(cfg)  # a wrong events.path: exit 2 before Spark starts, nothing recorded
    except PipelineError as exc:
        log.error("%s", exc)
        return exc.exit_code
    return _run_with_spark(args, cfg, pipeline, days)


def apply_overrides(cfg: Config, args: argparse.Namespace) -> Config:
    """Command-line switches that change the config for this run only."""
    if getattr(args, "allow_shrink", False):
        shrink = dataclasses.replace(cfg.quality.shrink, allow=True)
        cfg = dataclasses.replace(cfg, quality=dataclasses.replace(cfg.quality, shrink=shrink))
    return cfg


def _run_with_spark(args, cfg: Config, pipeline, days: List[date]) -> int:
    from spark_app.session import build_session

    if cfg.local_services is not None:  # the embedded servers (moto) accept any credentials
        from spark_app.session import fake_aws_credentials

        fake_aws_credentials()
    # profiling a day's tables (suggest) is JVM work: it keeps both compilers
    spark = build_session(cfg.spark, s3=cfg.s3, quick_jit=args.command != "suggest")
    try:
        try:
            engine = _quality_engine(spark, cfg)
        except PipelineError as exc:  # a missing or mismatched Deequ jar: before any data is read
            log.error("%s", exc)
            return exc.exit_code
        if args.command == "run":
            return _run_days(spark, cfg, pipeline, days)
        return _inspect_day(spark, cfg, pipeline, days[0], args.command, engine)
    finally:
        spark.stop()


def _quality_engine(spark, cfg: Config) -> str:
    """The data-quality engine of this run; a Deequ jar that cannot serve it fails here, at the start."""
    from spark_app.quality.gate import choose_engine

    engine = choose_engine(spark, cfg.quality.engine)
    log.info("data-quality engine: %s (quality.engine: %s)", engine, cfg.quality.engine)
    return engine


def _run_days(spark, cfg: Config, pipeline, days: List[date]) -> int:
    from spark_app.ops.metrics import put_run_metrics
    from spark_app.progress import Progress

    results = []
    for day in days:
        progress = Progress(f"{pipeline.NAME} {day}")
        code = _guarded(lambda: pipeline.run(spark, cfg, day, progress))  # noqa: B023
        put_run_metrics(cfg, pipeline.NAME, progress.as_stats(), code)  # a failure here is a warning
        print(f"\n== {pipeline.NAME} {day}: {'succeeded' if code == 0 else f'FAILED (exit {code})'}")
        print(progress.format_summary())
        engine = next((s.detail.get("engine") for s in progress.stages if s.name == "quality"), None)
        if engine:
            print(f"data-quality engine: {engine}")
        results.append((day, code))
    if len(days) > 1:
        failed = [(d, c) for d, c in results if c]
        print(f"\nbackfill: {len(days) - len(failed)} of {len(days)} days succeeded")
        for d, c in failed:
            print(f"  {d}: exit {c}")
    return next((c for _, c in results if c), 0)


def _inspect_day(spark, cfg: Config, pipeline, day: date, command: str, engine: str = "native") -> int:
    """`quality`: the day judged as a run judges it (history read from PostgreSQL), nothing written.
    `suggest`: the day's suggested constraints, each one passing on this day when pasted."""
    from spark_app.progress import Progress

    progress = Progress(f"{pipeline.NAME} {day}")

    def inspect() -> None:
        store = _history_store(cfg) if command == "quality" else None  # before Spark reads the day
        tables = pipeline.compute_tables(spark, cfg, day, progress, run_id=f"{command}-{day}")
        if command == "suggest":
            from spark_app.quality.suggest import suggest_constraints

            for name, df in tables.items():
                _print_suggestions(name, "ours", suggest_constraints(df))
                if engine == "deequ":
                    from spark_app.quality.deequ import deequ_suggestions

                    theirs = deequ_suggestions(spark, df)
                    _print_suggestions(name, "Deequ's ConstraintSuggestionRunner", theirs)
            return
        gate = pipeline.check_quality(spark, cfg, tables, day, f"quality-{day}", store, record=False)
        print(gate.format())
        if gate.errors:
            from spark_app.errors import QualityGateFailed

            lines = [f"{r.table}: {r.check}: {r.message}" for r in gate.errors]
            failed = f"{len(gate.errors)} Error-level constraint(s) failed for {day}"
            raise QualityGateFailed(f"{failed}; a run would publish nothing:\n  " + "\n  ".join(lines))

    return _guarded(inspect)


def _history_store(cfg: Config):
    """The PostgreSQL that a run would compare the day with, read only; None before the first run."""
    from spark_app.postgres.connect import connection_spec
    from spark_app.quality.store import history_store

    store = history_store(connection_spec(cfg.postgres), cfg.postgres.schema)
    if store is None:
        log.info("no quality history in schema %s yet: the day is judged as a first run would be",
                 cfg.postgres.schema)
    return store


def _print_suggestions(table: str, by: str, suggestions) -> None:
    print(f"\n== suggested constraints for {table} ({by})")
    print(suggestions.format())
    print(f"\n# as config (quality.checks), {by}:")
    print(suggestions.as_config(table))


def _guarded(action) -> int:
    """Run `action`; map our errors (also when raised inside Spark tasks) to exit codes."""
    try:
        action()
        return 0
    except PipelineError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except Exception as exc:  # Spark wraps task failures; recover our error when it is one
        ours = from_executor_failure(exc)
        if ours is None:
            log.exception("unexpected failure")
            return PipelineError.exit_code
        log.error("%s: %s", type(ours).__name__, ours)
        return ours.exit_code


def _db_upgrade(cfg: Config) -> int:
    from spark_app.postgres.connect import connection_spec
    from spark_app.postgres.schema import upgrade_schema

    upgrade_schema(connection_spec(cfg.postgres), cfg.postgres.schema)
    log.info("schema is up to date")
    return 0


def _report(args: argparse.Namespace, cfg: Config) -> int:
    from pathlib import Path

    from spark_app.postgres.connect import connection_spec
    from spark_app.report.build import check_window, default_out, read_report, summary, write_csvs, write_html

    check_pipeline(args.pipeline)
    days = cfg.report.days if args.days is None else args.days
    check_window(days)
    report = read_report(connection_spec(cfg.postgres), cfg.postgres.schema, args.pipeline, args.date, days,
                         cfg.report)
    if args.out and args.out.startswith("s3://"):  # to S3, like the delivered report (spark_app.ops.delivery)
        from spark_app.ops.delivery import report_to_s3

        print(report_to_s3(cfg, report, args.out, args.csv_dir))
        return 0
    out = Path(args.out) if args.out else default_out(args.pipeline, args.date)
    if not args.out and cfg.local_services is not None:  # the embedded stack keeps its files under .local/
        from spark_app.config import resolve_path

        out = Path(resolve_path(cfg.local_services.postgres.data_dir)).parent / out
    try:
        out = write_html(report, out)
        csvs = write_csvs(report, Path(args.csv_dir)) if args.csv_dir else None
    except OSError as exc:
        raise PipelineError(f"cannot write the report: {exc}") from None
    print(summary(report, out.resolve(), csvs))
    return 0


def _prune(args: argparse.Namespace, cfg: Config) -> int:
    from spark_app.postgres.connect import connection_spec
    from spark_app.postgres.retention import prune

    pg = cfg.postgres
    result = prune(connection_spec(pg), pg.schema, pg.retention_days, args.dry_run)
    print(result.format())
    return 0


def _load_pipeline(name: str):
    from pipelines import load_pipeline

    return load_pipeline(name)


def _setup_logging() -> None:
    """Stage lines, warnings and errors on the terminal, everything in the log file (spark_app.logs);
    under spark-submit everything on stderr, which is the step's log."""
    from spark_app.logs import chosen_log_file, setup

    log_file = setup(chosen_log_file())
    if log_file is not None:
        log.info("log file (all messages, Spark's too): %s", log_file)


if __name__ == "__main__":
    sys.exit(main())
