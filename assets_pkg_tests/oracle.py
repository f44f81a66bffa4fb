"""Independent reference model ("oracle") of the public data contract.

Written only from ``../shared/CONTRACT.md`` and ``docs/contract-decisions.md``; it shares no
code and no third-party library with ``assets_pkg`` (standard library only). It is meant to be
obviously correct rather than fast: it handles test-sized inputs of a few thousand rows.

Usage::

    oracle = Oracle(date(2024, 1, 1), date(2024, 1, 31))
    oracle.ingest_pass({"orders": {"orders_001.csv": b"order_id,..."}})
    oracle.tables()["warehouse.fct_orders"]

The choices it makes where neither document is explicit are listed in ``ASSUMPTIONS``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

ASSUMPTIONS = """
- Quarantine reason codes: not_utf8, empty (nothing but whitespace after the BOM), bad_csv
  (RFC 4180 tokenising fails: text after a closing quote, an unterminated quote),
  missing_column, duplicate_column, no_json_object, name_reused. Checked in that order.
- The manifest only holds ingested (archived) files. A quarantined file's name is not known:
  the same name may land again and is then read afresh. A name_reused copy does not replace
  the manifest entry.
- A CSV row that is empty or holds only whitespace is a blank line: skipped, not counted.
  The first non-blank row is the header. Header names are trimmed and case sensitive.
  A row with fewer fields than the header has NULL for the missing ones.
- duplicate_key: in one file, the last valid row of a key wins; every earlier valid row of
  that key whose parsed content differs from the winner's is rejected, rows equal to the
  winner are collapsed silently. Content = the parsed contract columns (currency defaulted).
- Events have no duplicate_key: inside a file too, the first line with an event_id wins and
  later lines with the same id are dropped (counted in ``dropped_events``).
- Integers accept an optional leading '-' only (no '+'), money an optional '+' or '-'.
- A timestamp offset with hours > 23 or minutes > 59 is bad_timestamp.
- partition_date of a reject: NULL for malformed_record; for order items the latest date of
  their order as known when the reject is written (after that pass's orders), so an orphan
  keeps NULL after it is resolved.
- A collapsed orphan item gives one reject, on the winning (last) row.
- daily_payments: settled_amount/refunded_amount are 0.00 (not NULL) in a group without
  such payments. daily_sales_by_category uses the same order filter as daily_sales
  (placed/shipped/delivered). NULL groups sort after the others.
"""

SOURCES = ("customers", "products", "orders", "order_items", "payments", "events")
CSV_SOURCES = frozenset({"customers", "products", "orders", "order_items"})
ASCII_WS = " \t\n\r\x0b\x0c"
CENT = Decimal("0.01")
SALES_STATUSES = frozenset({"placed", "shipped", "delivered"})

TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:\.([0-9]+))?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2}|[+-][0-9]{4})?",
    re.ASCII,
)
MONEY_RE = re.compile(r"[+-]?[0-9]{1,16}(?:\.[0-9]{1,2})?", re.ASCII)
INT_RE = re.compile(r"-?[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Col:
    name: str
    kind: str = "text"  # text | enum | ts | money | int | currency
    required: bool = False
    domain: tuple[str, ...] = ()
    minimum: int | None = None  # range check for numbers
    exclusive: bool = False  # minimum excluded (value must be > minimum)


SPECS: dict[str, tuple[Col, ...]] = {
    "customers": (
        Col("customer_id", required=True),
        Col("email"),
        Col("status", "enum", domain=("active", "inactive", "pending")),
        Col("country"),
        Col("signup_ts", "ts"),
        Col("updated_at", "ts", required=True),
    ),
    "products": (
        Col("product_id", required=True),
        Col("name"),
        Col("category", required=True),
        Col("list_price", "money", minimum=0),
        Col("unit_cost", "money", minimum=0),
        Col("updated_at", "ts", required=True),
    ),
    "orders": (
        Col("order_id", required=True),
        Col("customer_id", required=True),
        Col("order_ts", "ts", required=True),
        Col(
            "status",
            "enum",
            required=True,
            domain=("placed", "shipped", "delivered", "cancelled", "returned"),
        ),
        Col("channel", "enum", domain=("web", "mobile", "store")),
    ),
    "order_items": (
        Col("order_id", required=True),
        Col("line_number", "int", required=True, minimum=1),
        Col("product_id", required=True),
        Col("quantity", "int", required=True, minimum=0, exclusive=True),
        Col("unit_price", "money", required=True, minimum=0),
    ),
    "payments": (
        Col("payment_id", required=True),
        Col("order_id", required=True),
        Col("amount", "money", required=True, minimum=0, exclusive=True),
        Col("currency", "currency"),
        Col("method", "enum", domain=("card", "paypal", "bank_transfer", "gift_card")),
        Col("status", "enum", required=True, domain=("settled", "failed", "refunded")),
        Col("paid_ts", "ts", required=True),
    ),
    "events": (
        Col("event_id", required=True),
        Col("user_id"),
        Col("session_id", required=True),
        Col(
            "event_type",
            "enum",
            required=True,
            domain=("page_view", "product_view", "add_to_cart", "checkout", "purchase"),
        ),
        Col("event_ts", "ts", required=True),
        Col("page_url"),
        Col("product_id"),
        Col("order_id"),
    ),
}

KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "updated_at"),
    "products": ("product_id", "updated_at"),
    "orders": ("order_id",),
    "order_items": ("order_id", "line_number"),
    "payments": ("payment_id",),
    "events": ("event_id",),
}

DATE_COLUMN = {"orders": "order_ts", "payments": "paid_ts", "events": "event_ts"}


class _Malformed:
    """Marker for a row that cannot be read as a record (rule 1)."""


class _BadType:
    """Marker for a JSON object or array where a scalar is expected (rule 2)."""


MALFORMED = _Malformed()
BAD_TYPE = _BadType()


# --------------------------------------------------------------------------- value parsing


def trim(text: str) -> str | None:
    text = text.strip(ASCII_WS)
    return text or None


def parse_ts(text: str) -> datetime | None:
    """Strict ISO-8601 per the decisions doc, returned as naive UTC; None if it does not parse."""
    m = TS_RE.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    micro = int((fraction or "")[:6].ljust(6, "0"))
    try:
        value = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro
        )
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            off_h, off_m = int(digits[:2]), int(digits[2:])
            if off_h > 23 or off_m > 59:
                return None
            value -= sign * timedelta(hours=off_h, minutes=off_m)
    except (ValueError, OverflowError):
        return None
    return value


def parse_money(text: str) -> Decimal | None:
    if MONEY_RE.fullmatch(text) is None:
        return None
    return Decimal(text).quantize(CENT)


def parse_int(text: str) -> int | None:
    if INT_RE.fullmatch(text) is None:
        return None
    return int(text)


def ratio(numerator: Decimal | int, denominator: Decimal | int, places: int) -> Decimal:
    """numerator / denominator exactly, rounded half away from zero to `places` decimals."""
    num, den = Decimal(numerator), Decimal(denominator)
    # Scale both to integers (the inputs have at most 2 decimals: cents or counts).
    exp = min(num.as_tuple().exponent, den.as_tuple().exponent, 0)
    n = int(num.scaleb(-exp))
    d = int(den.scaleb(-exp))
    negative = (n < 0) != (d < 0)
    q, r = divmod(abs(n) * 10**places, abs(d))
    if 2 * r >= abs(d):
        q += 1
    result = Decimal(-q if negative else q).scaleb(-places)
    return result.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def is_landed(name: str) -> bool:
    return not (name.startswith(".") or name.endswith(".tmp") or name.endswith(".partial"))


def _none_last(value):
    return (value is None, value if value is not None else "")


# --------------------------------------------------------------------------- file reading


def read_file(source: str, content: bytes) -> tuple[str | None, list[tuple[int, object]]]:
    """(quarantine reason, []) or (None, [(row_number, values | MALFORMED), ...])."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "not_utf8", []
    if text.strip(ASCII_WS) == "":
        return "empty", []
    if source in CSV_SOURCES:
        return _read_csv(source, text)
    return _read_jsonl(source, text)


def _is_blank(fields: list[str]) -> bool:
    return len(fields) == 0 or (len(fields) == 1 and fields[0].strip(ASCII_WS) == "")


def _read_csv(source: str, text: str) -> tuple[str | None, list[tuple[int, object]]]:
    try:
        table = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return "bad_csv", []
    records = [r for r in table if not _is_blank(r)]
    header = [h.strip(ASCII_WS) for h in records[0]] if records else []
    if any(c.required and c.name not in header for c in SPECS[source]):
        return "missing_column", []
    if len(set(header)) != len(header):
        return "duplicate_column", []
    rows: list[tuple[int, object]] = []
    for number, fields in enumerate(records[1:], start=1):
        if len(fields) > len(header):
            rows.append((number, MALFORMED))
            continue
        by_name = {h: trim(fields[i]) if i < len(fields) else None for i, h in enumerate(header)}
        rows.append((number, {c.name: by_name.get(c.name) for c in SPECS[source]}))
    return None, rows


def _reject_constant(name: str):
    raise ValueError(f"not JSON: {name}")


def _json_value(value) -> object:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return BAD_TYPE
    return trim(str(value))


def _read_jsonl(source: str, text: str) -> tuple[str | None, list[tuple[int, object]]]:
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()  # the final terminator does not start another line
    rows: list[tuple[int, object]] = []
    objects = 0
    for number, line in enumerate(lines, start=1):
        if line.strip(ASCII_WS) == "":
            continue  # a blank line counts as a line but yields no row
        try:
            obj = json.loads(line, parse_float=str, parse_int=str, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            rows.append((number, MALFORMED))
            continue
        objects += 1
        rows.append((number, {c.name: _json_value(obj.get(c.name)) for c in SPECS[source]}))
    if objects == 0:
        return "no_json_object", []
    return None, rows


# --------------------------------------------------------------------------- row validation


def validate(source: str, values: object) -> tuple[str | None, dict | None]:
    """(first failing reason, None) or (None, parsed record)."""
    if values is MALFORMED:
        return "malformed_record", None
    assert isinstance(values, dict)
    spec = SPECS[source]
    for c in spec:
        if values[c.name] is BAD_TYPE:
            return "bad_type", None
    for c in spec:
        if c.required and values[c.name] is None:
            return "missing_required", None
    rec: dict = {}
    for c in spec:
        raw = values[c.name]
        if raw is None:
            rec[c.name] = "USD" if c.kind == "currency" else None
            continue
        if c.kind == "ts":
            rec[c.name] = parse_ts(raw)
            if rec[c.name] is None:
                return "bad_timestamp", None
        elif c.kind == "money":
            rec[c.name] = parse_money(raw)
            if rec[c.name] is None:
                return "bad_number", None
        elif c.kind == "int":
            rec[c.name] = parse_int(raw)
            if rec[c.name] is None:
                return "bad_number", None
        else:
            rec[c.name] = raw
    for c in spec:
        value = rec[c.name]
        if value is None:
            continue
        if c.kind == "enum" and value not in c.domain:
            return "out_of_domain", None
        if c.kind == "currency" and value != "USD":
            return "out_of_domain", None
        if c.minimum is not None and (value <= c.minimum if c.exclusive else value < c.minimum):
            return "out_of_domain", None
    return None, rec


# --------------------------------------------------------------------------- the model


@dataclass
class Reject:
    source: str
    file_name: str
    row_number: int
    reason: str
    partition_date: date | None
    resolved: bool = False

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "file_name": self.file_name,
            "row_number": self.row_number,
            "reason": self.reason,
            "partition_date": self.partition_date,
            "resolved": self.resolved,
        }


# A version is (file_name, row_number, parsed record); the greatest (file, row) is the latest.
Version = tuple[str, int, dict]


class Oracle:
    def __init__(self, start: date, end: date):
        self.start = start
        self.end = end
        self.quarantined: list[tuple[str, str, str]] = []
        self.manifest: dict[tuple[str, str], str] = {}
        self._rejects: list[Reject] = []
        # source -> key -> every version of that key (events: not used)
        self.versions: dict[str, dict[tuple, list[Version]]] = {s: {} for s in SOURCES}
        # event_id -> record of its first delivery
        self.events: dict[str, dict] = {}
        self.dropped_events = 0
        # orphan items waiting for their order: (file_name, row_number, key, record, reject)
        self.pending: list[tuple[str, int, tuple, dict, Reject]] = []

    # ------------------------------------------------------------------ ingest

    def ingest_pass(self, landing: dict[str, dict[str, bytes]]) -> None:
        for source in SOURCES:
            files = landing.get(source, {})
            for name in sorted(files):
                if is_landed(name):
                    self._ingest_file(source, name, files[name])
            if source == "orders":
                self._resolve_orphans()

    def _ingest_file(self, source: str, name: str, content: bytes) -> None:
        digest = hashlib.sha256(content).hexdigest()
        known = self.manifest.get((source, name))
        if known is not None:
            if known != digest:
                self.quarantined.append((source, name, "name_reused"))
            return  # same content: a no-op
        reason, rows = read_file(source, content)
        if reason is not None:
            self.quarantined.append((source, name, reason))
            return
        self.manifest[(source, name)] = digest
        self._load_rows(source, name, rows)

    def _order_date(self, order_id: object) -> date | None:
        versions = self.versions["orders"].get((order_id,))
        if not versions:
            return None
        return max(versions, key=lambda v: (v[0], v[1]))[2]["order_ts"].date()

    def _reject_date(self, source: str, values: object) -> date | None:
        if not isinstance(values, dict):
            return None
        if source == "order_items":
            return self._order_date(values["order_id"])
        column = DATE_COLUMN.get(source)
        raw = values.get(column) if column else None
        if isinstance(raw, str):
            ts = parse_ts(raw)
            return ts.date() if ts else None
        return None

    def _record_date(self, source: str, rec: dict) -> date | None:
        if source == "order_items":
            return self._order_date(rec["order_id"])
        column = DATE_COLUMN.get(source)
        return rec[column].date() if column else None

    def _load_rows(self, source: str, name: str, rows: list[tuple[int, object]]) -> None:
        new_rejects: list[Reject] = []
        valid: list[tuple[int, tuple, dict]] = []
        for number, values in rows:
            reason, rec = validate(source, values)
            if reason is not None:
                new_rejects.append(
                    Reject(source, name, number, reason, self._reject_date(source, values))
                )
            else:
                assert rec is not None
                valid.append((number, tuple(rec[k] for k in KEYS[source]), rec))

        if source == "events":
            for _number, key, rec in valid:
                if key[0] in self.events:
                    self.dropped_events += 1
                else:
                    self.events[key[0]] = rec
        else:
            winners: dict[tuple, tuple[int, dict]] = {}
            for number, key, rec in valid:
                winners[key] = (number, rec)
            for number, key, rec in valid:
                win_number, win_rec = winners[key]
                if number != win_number and rec != win_rec:
                    new_rejects.append(
                        Reject(
                            source, name, number, "duplicate_key", self._record_date(source, rec)
                        )
                    )
            for key, (number, rec) in winners.items():
                if source == "order_items" and (rec["order_id"],) not in self.versions["orders"]:
                    reject = Reject(source, name, number, "orphan_order_item", None)
                    new_rejects.append(reject)
                    self.pending.append((name, number, key, rec, reject))
                else:
                    self.versions[source].setdefault(key, []).append((name, number, rec))
        new_rejects.sort(key=lambda r: r.row_number)
        self._rejects.extend(new_rejects)

    def _resolve_orphans(self) -> None:
        still: list[tuple[str, int, tuple, dict, Reject]] = []
        for name, number, key, rec, reject in self.pending:
            if (rec["order_id"],) in self.versions["orders"]:
                self.versions["order_items"].setdefault(key, []).append((name, number, rec))
                reject.resolved = True
            else:
                still.append((name, number, key, rec, reject))
        self.pending = still

    def rejects(self) -> list[dict]:
        return [r.as_dict() for r in self._rejects]

    # ------------------------------------------------------------------ warehouse

    def _latest(self, source: str) -> dict[tuple, dict]:
        return {
            key: max(versions, key=lambda v: (v[0], v[1]))[2]
            for key, versions in self.versions[source].items()
        }

    def _in_range(self, day: date) -> bool:
        return self.start <= day <= self.end

    def _scd(self, source: str, id_col: str, attrs: tuple[str, ...]) -> list[dict]:
        per_id: dict[str, list[dict]] = {}
        for (entity_id, _updated_at), rec in self._latest(source).items():
            per_id.setdefault(entity_id, []).append(rec)
        out: list[dict] = []
        for entity_id in sorted(per_id):
            history = sorted(per_id[entity_id], key=lambda r: r["updated_at"])
            kept: list[dict] = []
            previous: tuple | None = None
            for rec in history:
                current = tuple(rec[a] for a in attrs)
                if previous is None or current != previous:
                    kept.append(rec)
                previous = current
            for i, rec in enumerate(kept):
                last = i == len(kept) - 1
                row = {id_col: entity_id}
                row.update({a: rec[a] for a in attrs})
                row["valid_from"] = rec["updated_at"]
                row["valid_to"] = None if last else kept[i + 1]["updated_at"]
                row["is_current"] = last
                out.append(row)
        return out

    def tables(self) -> dict[str, list[dict]]:
        dim_customer = self._scd(
            "customers", "customer_id", ("email", "status", "country", "signup_ts")
        )
        dim_product = self._scd(
            "products", "product_id", ("name", "category", "list_price", "unit_cost")
        )
        product_history: dict[str, list[dict]] = {}
        for row in dim_product:
            product_history.setdefault(row["product_id"], []).append(row)

        def product_at(product_id: str, ts: datetime) -> dict | None:
            history = product_history.get(product_id)
            if not history:
                return None
            if ts < history[0]["valid_from"]:
                return history[0]
            for row in history:
                if row["valid_from"] <= ts and (row["valid_to"] is None or ts < row["valid_to"]):
                    return row
            raise AssertionError("unreachable: versions cover [first valid_from, inf)")

        orders = self._latest("orders")
        lines_by_order: dict[str, list[dict]] = {}
        for (order_id, _line), item in self._latest("order_items").items():
            lines_by_order.setdefault(order_id, []).append(item)

        fct_orders: list[dict] = []
        fct_items: list[dict] = []
        for (order_id,), order in sorted(orders.items()):
            order_date = order["order_ts"].date()
            if not self._in_range(order_date):
                continue
            lines = sorted(lines_by_order.get(order_id, []), key=lambda r: r["line_number"])
            revenue = Decimal("0.00")
            costs: list[Decimal] = []
            for item in lines:
                product = product_at(item["product_id"], order["order_ts"])
                line_revenue = (item["quantity"] * item["unit_price"]).quantize(CENT)
                unit_cost = product["unit_cost"] if product else None
                line_cost = (
                    None if unit_cost is None else (item["quantity"] * unit_cost).quantize(CENT)
                )
                revenue += line_revenue
                if line_cost is not None:
                    costs.append(line_cost)
                fct_items.append(
                    {
                        "order_id": order_id,
                        "line_number": item["line_number"],
                        "product_id": item["product_id"],
                        "product_category": product["category"] if product else None,
                        "order_date": order_date,
                        "quantity": item["quantity"],
                        "unit_price": item["unit_price"],
                        "line_revenue": line_revenue,
                        "line_cost": line_cost,
                    }
                )
            if not lines:
                cost: Decimal | None = Decimal("0.00")
            elif costs:
                cost = sum(costs, Decimal("0.00"))
            else:
                cost = None
            fct_orders.append(
                {
                    "order_id": order_id,
                    "customer_id": order["customer_id"],
                    "order_date": order_date,
                    "order_ts": order["order_ts"],
                    "status": order["status"],
                    "channel": order["channel"],
                    "item_count": len(lines),
                    "revenue": revenue.quantize(CENT),
                    "cost": None if cost is None else cost.quantize(CENT),
                }
            )
        fct_items.sort(key=lambda r: (r["order_id"], r["line_number"]))

        fct_payments = []
        for (payment_id,), pay in sorted(self._latest("payments").items()):
            paid_date = pay["paid_ts"].date()
            if self._in_range(paid_date):
                fct_payments.append(
                    {
                        "payment_id": payment_id,
                        "order_id": pay["order_id"],
                        "paid_date": paid_date,
                        "paid_ts": pay["paid_ts"],
                        "amount": pay["amount"],
                        "currency": pay["currency"],
                        "method": pay["method"],
                        "status": pay["status"],
                    }
                )

        fct_sessions = self._sessions()

        return {
            "warehouse.dim_customer": dim_customer,
            "warehouse.dim_product": dim_product,
            "warehouse.fct_orders": fct_orders,
            "warehouse.fct_order_items": fct_items,
            "warehouse.fct_payments": fct_payments,
            "warehouse.fct_sessions": fct_sessions,
            "marts.daily_sales": _daily_sales(fct_orders),
            "marts.daily_sales_by_category": _daily_sales_by_category(fct_orders, fct_items),
            "marts.daily_payments": _daily_payments(fct_payments),
            "marts.daily_funnel": _daily_funnel(fct_sessions),
        }

    def _sessions(self) -> list[dict]:
        groups: dict[tuple[str, date], list[dict]] = {}
        for event in self.events.values():
            day = event["event_ts"].date()
            if self._in_range(day):
                groups.setdefault((event["session_id"], day), []).append(event)
        out = []
        for (session_id, day), events in sorted(groups.items()):
            events.sort(key=lambda e: (e["event_ts"], e["event_id"]))
            users = [e["user_id"] for e in events if e["user_id"] is not None]
            types = [e["event_type"] for e in events]
            out.append(
                {
                    "session_id": session_id,
                    "user_id": users[0] if users else None,
                    "session_date": day,
                    "session_start": events[0]["event_ts"],
                    "session_end": max(e["event_ts"] for e in events),
                    "event_count": len(events),
                    "product_views": types.count("product_view"),
                    "add_to_cart": types.count("add_to_cart"),
                    "checkouts": types.count("checkout"),
                    "purchases": types.count("purchase"),
                }
            )
        return out


# --------------------------------------------------------------------------- marts


def _sales_orders(fct_orders: list[dict]) -> list[dict]:
    return [o for o in fct_orders if o["status"] in SALES_STATUSES and o["item_count"] >= 1]


def _daily_sales(fct_orders: list[dict]) -> list[dict]:
    by_day: dict[date, list[dict]] = {}
    for order in _sales_orders(fct_orders):
        by_day.setdefault(order["order_date"], []).append(order)
    out = []
    for day in sorted(by_day):
        orders = by_day[day]
        revenue = sum((o["revenue"] for o in orders), Decimal("0.00"))
        costs = [o["cost"] for o in orders if o["cost"] is not None]
        cost = sum(costs, Decimal("0.00")) if costs else None
        gross = None if cost is None else revenue - cost
        margin = None if gross is None or revenue == 0 else ratio(gross, revenue, 4)
        out.append(
            {
                "order_date": day,
                "revenue": revenue.quantize(CENT),
                "cost": None if cost is None else cost.quantize(CENT),
                "gross_profit": None if gross is None else gross.quantize(CENT),
                "profit_margin": margin,
                "order_count": len(orders),
            }
        )
    return out


def _daily_sales_by_category(fct_orders: list[dict], fct_items: list[dict]) -> list[dict]:
    counted = {o["order_id"] for o in _sales_orders(fct_orders)}
    groups: dict[tuple[date, str | None], list[dict]] = {}
    for item in fct_items:
        if item["order_id"] in counted:
            groups.setdefault((item["order_date"], item["product_category"]), []).append(item)
    out = []
    for (day, category), items in groups.items():
        total = sum((i["line_revenue"] for i in items), Decimal("0.00"))
        order_count = len({i["order_id"] for i in items})
        out.append(
            {
                "date": day,
                "product_category": category,
                "total_sales": total.quantize(CENT),
                "order_count": order_count,
                "avg_order_value": ratio(total, order_count, 2),
            }
        )
    out.sort(key=lambda r: (r["date"], _none_last(r["product_category"])))
    return out


def _daily_payments(fct_payments: list[dict]) -> list[dict]:
    groups: dict[tuple[date, str | None], list[dict]] = {}
    for pay in fct_payments:
        groups.setdefault((pay["paid_date"], pay["method"]), []).append(pay)
    out = []
    for (day, method), pays in groups.items():
        settled = sum((p["amount"] for p in pays if p["status"] == "settled"), Decimal("0.00"))
        refunded = sum((p["amount"] for p in pays if p["status"] == "refunded"), Decimal("0.00"))
        out.append(
            {
                "paid_date": day,
                "method": method,
                "settled_amount": settled.quantize(CENT),
                "refunded_amount": refunded.quantize(CENT),
                "payment_count": len(pays),
            }
        )
    out.sort(key=lambda r: (r["paid_date"], _none_last(r["method"])))
    return out


def _daily_funnel(fct_sessions: list[dict]) -> list[dict]:
    by_day: dict[date, list[dict]] = {}
    for session in fct_sessions:
        by_day.setdefault(session["session_date"], []).append(session)
    out = []
    for day in sorted(by_day):
        sessions = by_day[day]
        purchases = sum(1 for s in sessions if s["purchases"] > 0)
        out.append(
            {
                "date": day,
                "sessions": len(sessions),
                "product_views": sum(1 for s in sessions if s["product_views"] > 0),
                "add_to_cart": sum(1 for s in sessions if s["add_to_cart"] > 0),
                "checkouts": sum(1 for s in sessions if s["checkouts"] > 0),
                "purchases": purchases,
                "conversion_rate": ratio(purchases, len(sessions), 4),
            }
        )
    return out
