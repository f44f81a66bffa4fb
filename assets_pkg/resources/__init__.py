"""Resources: where the data lives, configured from the contract's environment variables."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from assets_pkg.config import Settings, load_settings
from assets_pkg.resources.lake import LakeResource
from assets_pkg.resources.warehouse import WarehouseResource


class PlatformResource(dg.ConfigurableResource):
    """Data dir, lake, warehouse and partition range, from the ``ASSETS_PKG_*`` variables."""

    data_dir: str = Field(description="Root of landing/, archive/, quarantine/ and the manifest.")
    start_date: str = Field(description="First daily partition, YYYY-MM-DD.")
    end_date: str | None = Field(default=None, description="Last daily partition, if fixed.")
    lake_url: str = Field(description="Lake root.")
    warehouse_path: str = Field(description="DuckDB warehouse file.")

    def settings(self) -> Settings:
        env = {
            "ASSETS_PKG_DATA_DIR": self.data_dir,
            "ASSETS_PKG_START_DATE": self.start_date,
            "ASSETS_PKG_END_DATE": self.end_date or "",
            "ASSETS_PKG_LAKE_URL": self.lake_url,
            "ASSETS_PKG_WAREHOUSE_PATH": self.warehouse_path,
        }
        return load_settings(env)


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
        ),
        "lake": LakeResource(root=settings.lake_url),
        "warehouse": WarehouseResource(database=str(settings.warehouse_path)),
    }


__all__ = ["LakeResource", "PlatformResource", "WarehouseResource", "build_resources"]
