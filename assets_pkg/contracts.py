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

Kind = Literal[
    "id", "text", "enum", "timestamp", "money", "int", "date", "bool", "ratio", "count", "key"
]

MONEY = pl.Decimal(18, 2)
TIMESTAMP = pl.Datetime("us")

_DTYPES: dict[str, pl.DataType] = {
    "id": pl.String(),
    "text": pl.String(),
    "enum": pl.String(),
    "timestamp": TIMESTAMP,
    "money": MONEY,
    "int": pl.Int64(),
    "date": pl.Date(),
    "bool": pl.Boolean(),
    "ratio": pl.Decimal(9, 4),
    "count": pl.Int64(),
    "key": pl.Int64(),
}
_SQL_TYPES = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "enum": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "money": "DECIMAL(18,2)",
    "int": "BIGINT",
    "date": "DATE",
    "bool": "BOOLEAN",
    "ratio": "DECIMAL(9,4)",
    "count": "BIGINT",
    "key": "BIGINT",
}
#: what an e-mail address must look like (validity check; ingest keeps it as text)
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


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
    maximum: Decimal | int | None = None
    #: the value must look like an e-mail address (a validity check, not a reject)
    email: bool = False
    #: least share of non-NULL values a day must have (completeness); required is 1.0
    complete: float | None = None
    #: ``schema.table.column`` this column points at (a referential-integrity check)
    references: str | None = None

    @property
    def dtype(self) -> pl.DataType:
        return _DTYPES[self.kind]

    @property
    def sql_type(self) -> str:
        return _SQL_TYPES[self.kind]

    def domain_text(self) -> str:
        if self.accepted:
            return "one of " + ", ".join(self.accepted)
        if self.minimum is not None and self.maximum is not None:
            return f"between {self.minimum} and {self.maximum}"
        if self.minimum is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {self.minimum}"
        if self.email:
            return "an e-mail address"
        return ""

    def constraints(self, key: tuple[str, ...] = ()) -> dg.TableColumnConstraints:
        """The column's rules as Dagster shows them on the asset page."""
        other = [self.domain_text()] if self.domain_text() else []
        if self.complete is not None and not self.required:
            other.append(f"at least {self.complete:.0%} non-NULL per day")
        if self.references:
            other.append(f"references {self.references}")
        if self.name in key and len(key) > 1:
            other.append(f"part of the key ({', '.join(key)})")
        return dg.TableColumnConstraints(
            nullable=not self.required, unique=key == (self.name,), other=other
        )


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


def column_schema(contract: SourceContract | TableContract) -> dg.TableSchema:
    """The contract as Dagster column schema, with constraints, for the UI."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.sql_type,
                description=c.description,
                constraints=c.constraints(contract.key),
            )
            for c in contract.columns
        ]
    )


@dataclass(frozen=True)
class TableContract:
    """A staging, warehouse or mart table: its columns, rules, key and business date.

    The DDL, the column schema shown in the UI and every quality check of the table are
    read from this one declaration.
    """

    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    date_column: str | None = None
    description: str = ""
    #: key columns that may never be NULL (default: all); a mart may group NULLs
    not_null_key: tuple[str, ...] | None = None
    #: the column whose mix of values is compared with past days (drift)
    mix_column: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def not_null_columns(self) -> tuple[str, ...]:
        return self.key if self.not_null_key is None else self.not_null_key

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def ddl(self) -> str:
        cols = ",\n".join(
            f"    {c.name} {c.sql_type}{' NOT NULL' if c.required else ''}" for c in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {self.table} (\n{cols}\n)\n"


def _c(name: str, kind: Kind, description: str, required: bool = False, **rules) -> Column:
    return Column(name, kind, required=required, description=description, **rules)


_ZERO = Decimal(0)
_ONE = Decimal(1)

TABLES: dict[str, TableContract] = {
    t.table: t
    for t in (
        TableContract(
            table="warehouse.dim_customer",
            description=(
                "One row per customer version (SCD type 2), valid on [valid_from, valid_to)."
            ),
            key=("customer_key",),
            columns=(
                _c(
                    "customer_key",
                    "key",
                    "surrogate key, a hash of (customer_id, valid_from)",
                    True,
                ),
                _c("customer_id", "id", "customer id (opaque)", True),
                _c("email", "text", "e-mail address", email=True, complete=0.9),
                _c("status", "enum", "account state", accepted=CUSTOMER_STATUSES),
                _c("country", "text", "country code"),
                _c("signup_ts", "timestamp", "sign-up time, UTC"),
                _c("valid_from", "timestamp", "first instant this version is valid", True),
                _c("valid_to", "timestamp", "next version's valid_from; NULL when current"),
                _c("is_current", "bool", "the customer's current version", True),
            ),
        ),
        TableContract(
            table="warehouse.dim_product",
            description=(
                "One row per product version (SCD type 2), valid on [valid_from, valid_to)."
            ),
            key=("product_key",),
            columns=(
                _c("product_key", "key", "surrogate key, a hash of (product_id, valid_from)", True),
                _c("product_id", "id", "product id (opaque)", True),
                _c("name", "text", "product name"),
                _c("category", "text", "product category", complete=0.95),
                _c("list_price", "money", "list price", minimum=_ZERO),
                _c("unit_cost", "money", "unit cost", minimum=_ZERO, complete=0.95),
                _c("valid_from", "timestamp", "first instant this version is valid", True),
                _c("valid_to", "timestamp", "next version's valid_from; NULL when current"),
                _c("is_current", "bool", "the product's current version", True),
            ),
        ),
        TableContract(
            table="warehouse.fct_order_items",
            description="One row per order line, costed at the product version valid at order_ts.",
            key=("order_id", "line_number"),
            date_column="order_date",
            mix_column="product_category",
            columns=(
                _c("order_id", "id", "order id", True, references="warehouse.fct_orders.order_id"),
                _c("line_number", "int", "line, from 1", True, minimum=1),
                _c(
                    "product_id",
                    "id",
                    "product id",
                    True,
                    references="warehouse.dim_product.product_id",
                ),
                _c(
                    "product_category",
                    "text",
                    "category of the product version valid at order_ts",
                    complete=0.95,
                ),
                _c("order_date", "date", "date of the order's order_ts", True),
                _c("quantity", "int", "units ordered", True, minimum=0, exclusive_minimum=True),
                _c("unit_price", "money", "price per unit", True, minimum=_ZERO),
                _c("line_revenue", "money", "quantity x unit_price", True, minimum=_ZERO),
                _c(
                    "line_cost",
                    "money",
                    "quantity x unit_cost of the product version valid at order_ts",
                    minimum=_ZERO,
                    complete=0.95,
                ),
            ),
        ),
        TableContract(
            table="warehouse.fct_orders",
            description="One row per order in its latest state, with its lines' revenue and cost.",
            key=("order_id",),
            date_column="order_date",
            columns=(
                _c("order_id", "id", "order id (opaque)", True),
                _c(
                    "customer_id",
                    "id",
                    "ordering customer",
                    True,
                    references="warehouse.dim_customer.customer_id",
                ),
                _c("order_date", "date", "date of order_ts", True),
                _c("order_ts", "timestamp", "order time, UTC", True),
                _c("status", "enum", "latest state", True, accepted=ORDER_STATUSES),
                _c("channel", "enum", "sales channel", accepted=CHANNELS),
                _c("item_count", "count", "number of lines", True, minimum=0),
                _c("revenue", "money", "sum of line_revenue over the lines", True, minimum=_ZERO),
                _c("cost", "money", "sum of the known line_cost over the lines", minimum=_ZERO),
            ),
        ),
        TableContract(
            table="warehouse.fct_payments",
            description="One row per payment in its latest state.",
            key=("payment_id",),
            date_column="paid_date",
            mix_column="method",
            columns=(
                _c("payment_id", "id", "payment id (opaque)", True),
                _c(
                    "order_id", "id", "paid order", True, references="warehouse.fct_orders.order_id"
                ),
                _c("paid_date", "date", "date of paid_ts", True),
                _c("paid_ts", "timestamp", "payment time, UTC", True),
                _c("amount", "money", "amount paid", True, minimum=_ZERO, exclusive_minimum=True),
                _c("currency", "enum", "ISO currency", True, accepted=("USD",)),
                _c("method", "enum", "payment method", accepted=PAYMENT_METHODS),
                _c("status", "enum", "latest state", True, accepted=PAYMENT_STATUSES),
            ),
        ),
        TableContract(
            table="warehouse.fct_sessions",
            description="One row per session: the events of one session_id on one UTC date.",
            key=("session_id", "session_date"),
            date_column="session_date",
            columns=(
                _c("session_id", "id", "browser session", True),
                _c("user_id", "id", "first non-NULL user_id by (event_ts, event_id)"),
                _c("session_date", "date", "UTC date of the session's events", True),
                _c("session_start", "timestamp", "first event time", True),
                _c("session_end", "timestamp", "last event time", True),
                _c("event_count", "count", "events in the session", True, minimum=1),
                _c("product_views", "count", "product_view events", True, minimum=0),
                _c("add_to_cart", "count", "add_to_cart events", True, minimum=0),
                _c("checkouts", "count", "checkout events", True, minimum=0),
                _c("purchases", "count", "purchase events", True, minimum=0),
            ),
        ),
        TableContract(
            table="marts.daily_sales",
            description="One row per order date: revenue, cost and margin of the day's sales.",
            key=("order_date",),
            date_column="order_date",
            columns=(
                _c("order_date", "date", "order date", True),
                _c("revenue", "money", "revenue of the day's sales", True, minimum=_ZERO),
                _c("cost", "money", "cost of the day's sales (known lines)", minimum=_ZERO),
                _c("gross_profit", "money", "revenue - cost"),
                _c("profit_margin", "ratio", "gross_profit / revenue, NULL when revenue is 0"),
                _c("order_count", "count", "orders sold that day", True, minimum=1),
            ),
        ),
        TableContract(
            table="marts.daily_sales_by_category",
            description="One row per (date, product category): sales and orders in that category.",
            key=("date", "product_category"),
            not_null_key=("date",),
            date_column="date",
            mix_column="product_category",
            columns=(
                _c("date", "date", "order date", True),
                _c("product_category", "text", "category; NULL for unknown products"),
                _c(
                    "total_sales",
                    "money",
                    "line_revenue of the category's lines",
                    True,
                    minimum=_ZERO,
                ),
                _c(
                    "order_count",
                    "count",
                    "distinct orders with a line in the category",
                    True,
                    minimum=1,
                ),
                _c("avg_order_value", "money", "total_sales / order_count", True, minimum=_ZERO),
            ),
        ),
        TableContract(
            table="marts.daily_payments",
            description="One row per (paid date, method): settled and refunded amounts.",
            key=("paid_date", "method"),
            not_null_key=("paid_date",),
            date_column="paid_date",
            mix_column="method",
            columns=(
                _c("paid_date", "date", "payment date", True),
                _c("method", "enum", "payment method", accepted=PAYMENT_METHODS),
                _c("settled_amount", "money", "sum of settled payments", True, minimum=_ZERO),
                _c("refunded_amount", "money", "sum of refunded payments", True, minimum=_ZERO),
                _c("payment_count", "count", "payments that day and method", True, minimum=1),
            ),
        ),
        TableContract(
            table="marts.daily_funnel",
            description=(
                "One row per event date: sessions reaching each funnel step, and conversion."
            ),
            key=("date",),
            date_column="date",
            columns=(
                _c("date", "date", "event date", True),
                _c("sessions", "count", "sessions that day", True, minimum=1),
                _c("product_views", "count", "sessions with a product view", True, minimum=0),
                _c("add_to_cart", "count", "sessions with an add to cart", True, minimum=0),
                _c("checkouts", "count", "sessions with a checkout", True, minimum=0),
                _c("purchases", "count", "sessions with a purchase", True, minimum=0),
                _c(
                    "conversion_rate",
                    "ratio",
                    "sessions with a purchase / sessions",
                    minimum=_ZERO,
                    maximum=_ONE,
                ),
            ),
        ),
    )
}


STAGING_DATE_COLUMN = {
    "orders": "order_date",
    "order_items": "order_date",
    "payments": "paid_date",
    "events": "event_date",
}


def staging_contract(source: SourceContract) -> TableContract:
    """A staging table's contract: the source's columns, its business date, the version."""
    date = STAGING_DATE_COLUMN.get(source.name)
    extra = [Column(date, "date", required=True, description="business date")] if date else []
    return TableContract(
        table=f"staging.stg_{source.name}",
        description=source.description,
        key=source.key,
        date_column=date,
        columns=(
            *source.columns,
            *extra,
            Column("_file_name", "text", required=True, description="landing file of this version"),
            Column("_row_number", "int", required=True, description="row in that file"),
        ),
    )
