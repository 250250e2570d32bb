"""Where a run's messages go: the terminal shows what a person reads, the log file keeps the rest.

Under spark-submit (EMR on EC2 or Serverless) the driver's stderr is the step's log: every
message goes there, as before. A run started with plain `python` (the laptop, `make run`,
`make bench`) writes all messages to a log file, `$CATALOG_LOG_FILE` or `.local/logs/run.log`
under the project root, and shows on the terminal only the stage lines (`spark_app.progress`),
where the run's metrics, marker and report went (`spark_app.ops`),
`process_data`'s own lines, warnings and errors. Python warnings are logged (to the file), not
printed. Every local Spark session (also the benchmarks' and the tests') sends the JVM's log to
that file too (`log4j2_java_options`): the terminal gets the JVM's errors only, and the code
generator's compile failures (Spark falls back to interpreted code on its own) none.

Standard library only; nothing happens at import.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

LOG_FILE_ENV = "CATALOG_LOG_FILE"
DEFAULT_LOG_FILE = Path(".local") / "logs" / "run.log"  # under the project root
# INFO lines a person reads on the terminal
TERMINAL_INFO = ("process_data", "spark_app.progress", "spark_app.ops")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_QUIET = ("py4j", "botocore", "urllib3", "alembic")

_state = {"file": None}  # the log file of this process, once `setup` chose one


def launched_by_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway already running."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def chosen_log_file(root: Optional[Path] = None) -> Optional[Path]:
    """The log file of a run started with plain python; None under spark-submit (stderr is the log)."""
    if launched_by_spark_submit():
        return None
    configured = os.environ.get(LOG_FILE_ENV)
    if configured:
        return Path(configured).resolve()
    return ((root or Path(__file__).resolve().parent.parent) / DEFAULT_LOG_FILE).resolve()


def current_log_file() -> Optional[Path]:
    """The file `setup` sends this process's log to, or None (everything on stderr)."""
    return _state["file"]


class _Terminal(logging.Filter):
    """Warnings and errors, and the INFO lines of TERMINAL_INFO; Python warnings stay in the file."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "py.warnings":
            return False
        if record.levelno >= logging.WARNING:
            return True
        return any(record.name == n or record.name.startswith(n + ".") for n in TERMINAL_INFO)


def setup(log_file: Optional[Path] = None) -> Optional[Path]:
    """Configure the root logger (again, replacing what an earlier call installed); return the file.

    Without a file (spark-submit, or a file that cannot be opened) every INFO line goes to stderr.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_catalog_log", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.INFO)
    terminal = logging.StreamHandler(sys.stderr)
    terminal.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    handlers = [terminal]
    opened = None
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            opened = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            print(f"cannot write the log file {log_file} ({exc}); logging to stderr", file=sys.stderr)
    if opened is not None:
        opened.setFormatter(logging.Formatter(FORMAT))
        terminal.addFilter(_Terminal())
        handlers.append(opened)
    for handler in handlers:
        handler._catalog_log = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for noisy in _QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(opened is not None)
    _state["file"] = log_file if opened is not None else None
    return _state["file"]


# Local sessions' JVM log (log4j2): WARN and up into the run's log file, errors also on stderr,
# the code generator's compile failures (and the plan dumps that follow them) in the file only.
_LOG4J2 = """\
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${sys:catalog.log.file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = error
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.console.ref = console
logger.codegen.name = org.apache.spark.sql.catalyst.expressions.codegen
logger.codegen.level = warn
logger.codegen.additivity = false
logger.codegen.appenderRef.file.ref = file
"""


def log4j2_java_options(log_file: Path) -> str:
    """JVM options that send a local driver's log4j2 output to `log_file` (see _LOG4J2); "" when
    its folder cannot be written (Spark's own defaults then apply)."""
    conf = log_file.with_name("log4j2-spark.properties")
    try:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(_LOG4J2, encoding="utf-8")
    except OSError:
        return ""
    return f'-Dlog4j2.configurationFile={conf.as_uri()} "-Dcatalog.log.file={log_file}"'
