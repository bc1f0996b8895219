"""Settings: one object, read from ``DISPO_*`` environment variables (or a ``.env`` file).

Every setting is documented in ``docs/configuration.md``; a test fails when one is not.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Dispo's configuration. Construct with keyword arguments in tests; from the environment otherwise."""

    model_config = SettingsConfigDict(env_prefix="DISPO_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("dispo-data"),
        description="Directory of the embedded SQLite database (used when DISPO_DATABASE_URL is empty).",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL. Empty means SQLite at <data_dir>/dispo.db. "
        "PostgreSQL: postgresql://user@host:5432/dbname.",
    )
    host: str = Field(default="127.0.0.1", description="Address `dispo serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `dispo serve` listens on.")
    public_url: str = Field(
        default="",
        description="Base URL clients use to reach this server, shown on start-up. "
        "Empty means http://<host>:<port>.",
    )
    bootstrap_org_name: str = Field(
        default="Default organization",
        description="Name of the organization created on first start when none exists.",
    )
    page_limit_default: int = Field(default=10, ge=1, description="Page size when a list omits `limit`.")
    page_limit_max: int = Field(default=1000, ge=1, description="Largest `limit` a list accepts.")
    search_ids_max: int = Field(default=100, ge=1, description="Most call ids one batch search accepts.")
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a server remembers that an API key is valid. A key revoked from the CLI "
        "stops working within this time; 0 checks the database on every request.",
    )
    db_pool_size: int = Field(default=8, ge=1, description="Database connections kept open per process.")
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Server log level: critical, error, warning, info or debug."
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_url(cls, value: str) -> str:
        # Users paste libpq URLs; SQLAlchemy needs the driver named. psycopg 3 is the one we ship.
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL in force: the configured one, or the embedded SQLite file."""
        return self.database_url or f"sqlite:///{self.data_dir / 'dispo.db'}"

    @property
    def base_url(self) -> str:
        """The server's public base URL, without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
