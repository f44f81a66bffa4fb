"""The data contract as code: one declaration per landing source.

Parsing, validation, rejects, lake schemas and the column-schema metadata shown in the
UI all read these declarations; nothing restates them by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

import dagster as dg
import polars as pl

Kind = Literal["id", "text", "enum", "timestamp", "money", "int"]

MONEY = pl.Decimal(18, 2)
TIMESTAMP = pl.Datetime("us")

_DTYPES: dict[str, pl.DataType] = {
    "id": pl.String(),
    "text": pl.String(),
    "enum": pl.String(),
    "timestamp": TIMESTAMP,
    "money": MONEY,
    "int": pl.Int64(),
}
_SQL_TYPES = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "enum": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "money": "DECIMAL(18,2)",
    "int": "BIGINT",
}


@dataclass(frozen=True)
class Column:
    """One landing column and the rules a value must follow."""

    name: str
    kind: Kind
    required: bool = False
    description: str = ""
    accepted: tuple[str, ...] = ()
    minimum: Decimal | int | None = None
    exclusive_minimum: bool = False
    default: str | None = None

    @property
    def dtype(self) -> pl.DataType:
        return _DTYPES[self.kind]

    @property
    def sql_type(self) -> str:
        return _SQL_TYPES[self.kind]

    def domain_text(self) -> str:
        if self.accepted:
            return "one of " + ", ".join(self.accepted)
        if self.minimum is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {self.minimum}"
        return ""


@dataclass(frozen=True)
class SourceContract:
    """A landing source: its file format, columns, key and business date."""

    name: str
    format: Literal["csv", "jsonl"]
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    date_column: str | None
    first_delivery_wins: bool = False
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    @property
    def is_dimension(self) -> bool:
        return self.name in ("customers", "products")

    @property
    def partitioned(self) -> bool:
        return not self.is_dimension

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def schema(self) -> dict[str, pl.DataType]:
        """The typed lake schema: contract columns plus version bookkeeping."""
        return {c.name: c.dtype for c in self.columns} | VERSION_SCHEMA


VERSION_SCHEMA: dict[str, pl.DataType] = {
    "_file_name": pl.String(),
    "_row_number": pl.Int64(),
    "_ingest_id": pl.String(),
}
VERSION_COLUMNS = ["_file_name", "_row_number"]

CUSTOMER_STATUSES = ("active", "inactive", "pending")
ORDER_STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")
CHANNELS = ("web", "mobile", "store")
PAYMENT_METHODS = ("card", "paypal", "bank_transfer", "gift_card")
PAYMENT_STATUSES = ("settled", "failed", "refunded")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout", "purchase")
SALE_STATUSES = ("placed", "shipped", "delivered")

SOURCES: dict[str, SourceContract] = {
    s.name: s
    for s in (
        SourceContract(
            name="customers",
            format="csv",
            description="Customer snapshots, one row per customer as of updated_at.",
            key=("customer_id", "updated_at"),
            date_column=None,
            columns=(
                Column("customer_id", "id", required=True, description="Customer id (opaque)."),
                Column("email", "text", description="E-mail address."),
                Column("status", "enum", accepted=CUSTOMER_STATUSES, description="Account state."),
                Column("country", "text", description="Country code."),
                Column("signup_ts", "timestamp", description="Sign-up time, UTC."),
                Column("updated_at", "timestamp", required=True, description="Snapshot time, UTC."),
            ),
        ),
        SourceContract(
            name="products",
            format="csv",
            description="Product snapshots, one row per product as of updated_at.",
            key=("product_id", "updated_at"),
            date_column=None,
            columns=(
                Column("product_id", "id", required=True, description="Product id (opaque)."),
                Column("name", "text", description="Product name."),
                Column("category", "text", required=True, description="Product category."),
                Column("list_price", "money", minimum=Decimal(0), description="List price."),
                Column("unit_cost", "money", minimum=Decimal(0), description="Unit cost."),
                Column("updated_at", "timestamp", required=True, description="Snapshot time, UTC."),
            ),
        ),
        SourceContract(
            name="orders",
            format="csv",
            description="Order headers; a later record for an order_id supersedes an earlier one.",
            key=("order_id",),
            date_column="order_ts",
            columns=(
                Column("order_id", "id", required=True, description="Order id (opaque)."),
                Column("customer_id", "id", required=True, description="Ordering customer."),
                Column("order_ts", "timestamp", required=True, description="Order time, UTC."),
                Column(
                    "status", "enum", required=True, accepted=ORDER_STATUSES, description="State."
                ),
                Column("channel", "enum", accepted=CHANNELS, description="Sales channel."),
            ),
        ),
        SourceContract(
            name="order_items",
            format="csv",
            description="Order lines, dated by their order's order_ts.",
            key=("order_id", "line_number"),
            date_column=None,
            columns=(
                Column("order_id", "id", required=True, description="Order id."),
                Column("line_number", "int", required=True, minimum=1, description="Line, from 1."),
                Column("product_id", "id", required=True, description="Product id."),
                Column(
                    "quantity",
                    "int",
                    required=True,
                    minimum=0,
                    exclusive_minimum=True,
                    description="Units ordered.",
                ),
                Column(
                    "unit_price",
                    "money",
                    required=True,
                    minimum=Decimal(0),
                    description="Price per unit.",
                ),
            ),
        ),
        SourceContract(
            name="payments",
            format="jsonl",
            description="Payments; a later record for a payment_id supersedes an earlier one.",
            key=("payment_id",),
            date_column="paid_ts",
            columns=(
                Column("payment_id", "id", required=True, description="Payment id (opaque)."),
                Column("order_id", "id", required=True, description="Paid order."),
                Column(
                    "amount",
                    "money",
                    required=True,
                    minimum=Decimal(0),
                    exclusive_minimum=True,
                    description="Amount paid.",
                ),
                Column(
                    "currency",
                    "enum",
                    accepted=("USD",),
                    default="USD",
                    description="ISO currency; only USD is accepted.",
                ),
                Column("method", "enum", accepted=PAYMENT_METHODS, description="Payment method."),
                Column(
                    "status", "enum", required=True, accepted=PAYMENT_STATUSES, description="State."
                ),
                Column("paid_ts", "timestamp", required=True, description="Payment time, UTC."),
            ),
        ),
        SourceContract(
            name="events",
            format="jsonl",
            description="Clickstream events, delivered at least once; the first delivery wins.",
            key=("event_id",),
            date_column="event_ts",
            first_delivery_wins=True,
            columns=(
                Column("event_id", "id", required=True, description="Event id (opaque)."),
                Column("user_id", "id", description="Logged-in user, if any."),
                Column("session_id", "id", required=True, description="Browser session."),
                Column(
                    "event_type", "enum", required=True, accepted=EVENT_TYPES, description="Step."
                ),
                Column("event_ts", "timestamp", required=True, description="Event time, UTC."),
                Column("page_url", "text", description="Page URL."),
                Column("product_id", "id", description="Viewed or added product."),
                Column("order_id", "id", description="Order of a purchase."),
            ),
        ),
    )
}

#: One ingest pass applies sources in this order (orders before their items).
INGEST_ORDER = ("customers", "products", "orders", "order_items", "payments", "events")
FACT_SOURCES = ("orders", "order_items", "payments", "events")
DIMENSION_SOURCES = ("customers", "products")


def column_schema(contract: SourceContract) -> dg.TableSchema:
    """The contract as Dagster column schema, with constraints, for the UI."""
    cols = []
    for c in contract.columns:
        other = []
        if c.domain_text():
            other.append(c.domain_text())
        if c.name in contract.key:
            other.append("part of the key")
        cols.append(
            dg.TableColumn(
                name=c.name,
                type=c.sql_type,
                description=c.description,
                constraints=dg.TableColumnConstraints(nullable=not c.required, other=other),
            )
        )
    return dg.TableSchema(columns=cols)
