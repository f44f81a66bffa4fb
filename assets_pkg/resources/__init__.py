"""Resources: where the data lives, configured from the contract's environment variables."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from assets_pkg.config import Settings, load_settings
from assets_pkg.quality.config import QualityResource, load_quality
from assets_pkg.resources.lake import LakeResource
from assets_pkg.resources.warehouse import WarehouseResource


class PlatformResource(dg.ConfigurableResource):
    """Data dir, lake, warehouse and partition range, from the ``ASSETS_PKG_*`` variables."""

    data_dir: str = Field(description="Root of landing/, archive/, quarantine/ and the manifest.")
    start_date: str = Field(description="First daily partition, YYYY-MM-DD.")
    end_date: str | None = Field(default=None, description="Last daily partition, if fixed.")
    lake_url: str = Field(description="Lake root.")
    warehouse_path: str = Field(description="DuckDB warehouse file.")
    alert_webhook: str | None = Field(
        default=None, description="URL alerts are POSTed to (ASSETS_PKG_ALERT_WEBHOOK), if any."
    )
    realtime_days: int = Field(default=2, description="Days the speed layer keeps.")

    def settings(self) -> Settings:
        env = {
            "ASSETS_PKG_DATA_DIR": self.data_dir,
            "ASSETS_PKG_START_DATE": self.start_date,
            "ASSETS_PKG_END_DATE": self.end_date or "",
            "ASSETS_PKG_LAKE_URL": self.lake_url,
            "ASSETS_PKG_WAREHOUSE_PATH": self.warehouse_path,
            "ASSETS_PKG_ALERT_WEBHOOK": _reveal(self.alert_webhook),
            "ASSETS_PKG_REALTIME_DAYS": str(self.realtime_days),
        }
        return load_settings(env)


ALERT_WEBHOOK_VAR = "ASSETS_PKG_ALERT_WEBHOOK"


def _secret(var: str, value: str | None) -> str | None:
    """``dg.EnvVar(var)`` when ``value`` came from that variable, so the UI shows its name.

    A webhook URL usually carries a token; resource config given as a plain string is
    displayed in the UI, an ``EnvVar`` is not.
    """
    if value and os.environ.get(var, "").strip() == value:
        return dg.EnvVar(var)
    return value


def _reveal(value: str | None) -> str:
    """The value itself, also on a resource built directly (its ``EnvVar`` not yet resolved)."""
    if isinstance(value, dg.EnvVar):
        return value.get_value() or ""
    return value or ""


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    """Resources whose defaults come from the environment (read now, not at import)."""
    settings = settings or load_settings()
    return {
        "platform": PlatformResource(
            data_dir=str(settings.data_dir),
            start_date=settings.start_date.isoformat(),
            end_date=settings.end_date.isoformat() if settings.end_date else None,
            lake_url=settings.lake_url,
            warehouse_path=str(settings.warehouse_path),
            alert_webhook=_secret(ALERT_WEBHOOK_VAR, settings.alert_webhook),
            realtime_days=settings.realtime_days,
        ),
        "lake": LakeResource(root=settings.lake_url, s3_timeout_s=settings.lake_timeout_s),
        "warehouse": WarehouseResource(database=str(settings.warehouse_path)),
        # the speed layer's own file, so its writes never queue behind a warehouse step
        "realtime": WarehouseResource(database=str(settings.realtime_path), lock_timeout_s=60),
        "quality": load_quality(),
    }


__all__ = [
    "LakeResource",
    "PlatformResource",
    "QualityResource",
    "WarehouseResource",
    "build_resources",
]
