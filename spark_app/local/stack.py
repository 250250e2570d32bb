"""Where the local stack of a config lives, and which days and sample it prepares."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import List, Optional
from urllib.parse import urlsplit

from spark_app.config import Config, LocalServicesConfig, SampleConfig, resolve_path
from spark_app.errors import ConfigError
from spark_app.local.sample_data import SampleSpec
from spark_app.local.servers import LocalPostgres
from spark_app.s3_uri import is_s3_uri


@dataclass
class Stack:
    """Where the local services of a config live."""

    cfg: Config
    conf_path: Path

    @property
    def services(self) -> LocalServicesConfig:
        if self.cfg.local_services is None:
            raise ConfigError(
                f"{self.conf_path}: local_services: required for the local stack (see conf/local.yaml)"
            )
        return self.cfg.local_services

    @property
    def pg(self) -> LocalPostgres:
        p = self.services.postgres
        return LocalPostgres(resolve_path(p.data_dir), p.port, p.database)

    @property
    def state_dir(self) -> Path:
        return Path(resolve_path(self.services.postgres.data_dir)).parent

    @property
    def moto_pid_file(self) -> Path:
        return self.state_dir / "moto.pid"

    @property
    def moto_port(self) -> int:
        return self.services.dynamodb_port

    @property
    def events_in_s3(self) -> bool:
        return self.cfg.events is not None and is_s3_uri(self.cfg.events.path)

    @property
    def events_root(self) -> Path:
        """The local folder of the generated day: events.path, or sample_dir when that is s3://."""
        if self.cfg.events is None:
            raise ConfigError(
                f"{self.conf_path}: events: the local stack generates event files; set events.path"
            )
        if self.events_in_s3:
            return Path(resolve_path(self.services.sample_dir))
        return Path(resolve_path(self.cfg.events.path))

    def days(self, day: date) -> List[date]:
        """The days the stack prepares and `run` runs: `local_services.sample.days` ending on `day`."""
        return window(day, self.services.sample.days)

    def keys_using_port(self, port: int) -> List[str]:
        """Every config key that names `port`: what to change together when the port is taken."""
        s = self.services
        keys = [k for k, p in (("local_services.dynamodb_port", s.dynamodb_port),
                               ("local_services.postgres.port", s.postgres.port)) if p == port]
        urls = [("dynamodb.endpoint_url", self.cfg.dynamodb.endpoint_url),
                ("s3.endpoint_url", self.cfg.s3.endpoint_url if self.cfg.s3 else None),
                ("metrics.endpoint_url", self.cfg.metrics.endpoint_url if self.cfg.metrics else None),
                ("alerts.endpoint_url", self.cfg.alerts.endpoint_url if self.cfg.alerts else None),
                ("postgres.url", self.cfg.postgres.url)]
        return keys + [k for k, url in urls if url and _port_of(url) == port]


def _port_of(url: str) -> Optional[int]:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def sample_spec(sample: SampleConfig, day: Optional[date] = None) -> SampleSpec:
    """The generator's spec: the config's names; the drop starts the day before `day`."""
    fields = {k: v for k, v in dataclasses.asdict(sample).items() if k != "days"}
    if day is not None and sample.drop_advertisers:
        fields["drop_from"] = (day - timedelta(days=1)).isoformat()
    return SampleSpec(**fields)  # the rest keeps its defaults


def window(day: date, days: int) -> List[date]:
    return [day - timedelta(days=days - 1 - i) for i in range(max(days, 1))]
