"""Hand-written landing files, written to the contract (not by the project's generator),
run through two ingest passes and a backfill on a real Dagster instance and DuckDB file.

The warehouse must equal the independent reference model (``oracle.py``) table by table,
and a handful of values are also checked against numbers worked out by hand below.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from assets_pkg.cli.main import do_backfill, do_ingest
from assets_pkg_tests.conftest import (
    END,
    START,
    TABLE_KEYS,
    land,
    read_table,
    sort_rows,
    use_temp_platform,
)
from assets_pkg_tests.oracle import Oracle

D = Decimal

PASS_1: dict[str, dict[str, str | bytes]] = {
    "customers": {
        "customers_001.csv": (
            "\ufeffcustomer_id,email,status,country,signup_ts,updated_at\r\n"
            "C1,a@example.com,active,US,2023-01-01T00:00:00Z,2024-01-01T00:00:00Z\r\n"
            "C2,b@example.com,pending,DE,2023-02-01 10:00,2024-01-01T00:00:00Z\r\n"
            "C3,c@example.com,sleeping,FR,2023-02-01 10:00,2024-01-01T00:00:00Z\r\n"
        ),
        "customers_002.csv": (
            # column order is free and extra columns are ignored
            "updated_at,customer_id,status,email,country,signup_ts,loyalty_tier\n"
            "2024-03-02T00:00:00+01:00,C1,inactive,a@example.com,US,2023-01-01T00:00:00Z,gold\n"
            "2024-03-03T00:00:00Z,C1,active,a@example.com,US,2023-01-01T00:00:00Z,gold\n"
            "2024-03-04T00:00:00Z,C2,pending,b@example.com,DE,2023-02-01T10:00:00Z,\n"
        ),
    },
    "products": {
        "products_001.csv": (
            "product_id,name,category,list_price,unit_cost,updated_at\n"
            'P1,"Lamp, ""deluxe""",Home,20.00,4.00,2024-01-01T00:00:00Z\n'
            "P2,Novel,Books,12.50,6.25,2024-03-05T00:00:00Z\n"
            "P3,Ball,Toys,5.00,-1.00,2024-01-01T00:00:00Z\n"
            "P4,Kite,Toys,8.00,3.00,2024-01-01\n"
        ),
        "products_002.csv": (
            "product_id,name,category,list_price,unit_cost,updated_at\n"
            'P1,"Lamp, ""deluxe""",Lighting,22.00,5.00,2024-03-03T12:00:00Z\n'
        ),
    },
    "orders": {
        "orders_2024-03-01.csv": (
            "order_id,customer_id,order_ts,status,channel\n"
            "O1,C1,2024-03-01T09:00:00Z,placed,web\n"
            "O2,C2,2024-03-01 23:30:00-02:00,placed,mobile\n"  # 2024-03-02 01:30 UTC
            "O3,C1,2024-03-02T10:00:00.1234567Z,placed,store\n"
            "O4,C2,2024-03-02T11:00:00Z,placed,\n"
            "O5,C1,2024-03-03T08:00:00Z,cancelled,web\n"
            "O6,,2024-03-03T08:00:00Z,placed,web\n"
            "O7,C1,03/03/2024 08:00,placed,web\n"
            "O8,C1,2024-03-03T08:00:00Z,SHIPPED,web\n"
            "O10,C2,2024-03-04T12:00:00Z,placed,web\n"
            "O10,C2,2024-03-04T12:00:00Z,delivered,web\n"
            "O11,C3,2024-04-02T12:00:00Z,placed,web\n"
        ),
        "orders_2024-03-02.csv": (
            "order_id,customer_id,order_ts,status,channel\n"
            "O1,C1,2024-03-01T09:00:00Z,shipped,web\n"
            "O3,C1,2024-03-04T10:00:00Z,placed,store\n"  # corrected: moves 03-02 -> 03-04
        ),
        "orders_broken.csv": "customer_id,order_ts,status\nC1,2024-03-01T00:00:00Z,placed\n",
        "orders_next.csv.tmp": (
            "order_id,customer_id,order_ts,status\nOX,C1,2024-03-01T00:00Z,placed\n"
        ),
    },
    "order_items": {
        "order_items_2024-03-01.csv": (
            "order_id,line_number,product_id,quantity,unit_price\n"
            "O1,1,P1,2,20.00\n"
            "O1,2,P2,1,12.50\n"
            "O2,1,P1,1,19.99\n"
            "O3,1,P1,3,20.00\n"
            "O4,1,P-UNKNOWN,1,9.99\n"
            "O4,2,P4,1,8.00\n"
            "O5,1,P1,1,20.00\n"
            "O9,1,P1,1,20.00\n"
            "O10,1,P2,0,12.50\n"
            "O10,1,P2,2,12.50\n"
            "O10,2,P1,1,2.505\n"
            "O10,3,P1,x,20.00\n"
            "O10,4,P1,1,20.00,extra\n"
        ),
    },
    "payments": {
        "payments_2024-03-01.jsonl": (
            '{"payment_id": "Y1", "order_id": "O1", "amount": 52.50, "method": "card", '
            '"status": "settled", "paid_ts": "2024-03-01T09:05:00Z"}\n'
            "\n"
            '{"payment_id": 2, "order_id": 2, "amount": "19.99", "currency": "USD", '
            '"method": "paypal", "status": "failed", "paid_ts": "2024-03-02T01:35:00Z"}\n'
            '{"payment_id": "Y3", "order_id": "O2", "amount": "19.99", "method": "paypal", '
            '"status": "settled", "paid_ts": "2024-03-02T01:40:00+00:00"}\n'
            '{"payment_id": "Y4", "order_id": "O4", "amount": 10, "currency": "EUR", '
            '"status": "settled", "paid_ts": "2024-03-02T12:00:00Z"}\n'
            '{"payment_id": "Y5", "order_id": "O4", "amount": 0, '
            '"status": "settled", "paid_ts": "2024-03-02T12:00:00Z"}\n'
            '{"payment_id": "Y6", "order_id": {"id": "O4"}, "amount": 1, '
            '"status": "settled", "paid_ts": "2024-03-02T12:00:00Z"}\n'
            "this is not json\n"
            '{"payment_id": "Y7", "order_id": "O10", "amount": "45.00", "method": "gift_card", '
            '"status": "settled", "paid_ts": "2024-03-04T12:30:00Z"}\n'
        ),
        "payments_garbage.jsonl": "hello\nworld\n",
    },
    "events": {
        "events_2024-03-01T0900.jsonl": (
            '{"event_id": "E1", "session_id": "S1", "event_type": "page_view", '
            '"event_ts": "2024-03-01T09:00:00Z", "page_url": "/"}\n'
            '{"event_id": "E2", "user_id": "C1", "session_id": "S1", "event_type": '
            '"product_view", "event_ts": "2024-03-01T09:01:00Z", "product_id": "P1"}\n'
            '{"event_id": "E3", "user_id": "C1", "session_id": "S1", "event_type": "add_to_cart", '
            '"event_ts": "2024-03-01T09:02:00Z", "product_id": "P1"}\n'
            '{"event_id": "E4", "user_id": "C1", "session_id": "S1", "event_type": "checkout", '
            '"event_ts": "2024-03-01T09:03:00Z"}\n'
            '{"event_id": "E5", "user_id": "C1", "session_id": "S1", "event_type": "purchase", '
            '"event_ts": "2024-03-01T09:04:00Z", "order_id": "O1"}\n'
            '{"event_id": "E6", "session_id": "S2", "event_type": "page_view", '
            '"event_ts": "2024-03-01T23:59:00Z"}\n'
            '{"event_id": "E7", "user_id": "U9", "session_id": "S2", "event_type": "product_view", '
            '"event_ts": "2024-03-02T00:01:00Z", "product_id": "P2"}\n'
            '{"event_id": "E8", "session_id": "S3", "event_type": "wishlist", '
            '"event_ts": "2024-03-01T10:00:00Z"}\n'
        ),
        "events_2024-03-01T0915.jsonl": (
            # at-least-once delivery: E5 again, identical; first delivery wins
            '{"event_id": "E5", "user_id": "C1", "session_id": "S1", "event_type": "purchase", '
            '"event_ts": "2024-03-01T09:04:00Z", "order_id": "O1"}\n'
            '{"event_id": "E9", "user_id": "U2", "session_id": "S4", "event_type": "page_view", '
            '"event_ts": "2024-03-01T09:10:00Z"}\n'
        ),
        ".events_inflight.jsonl": '{"event_id": "EX"}\n',
        "events_late.jsonl.partial": '{"event_id": "EY"}\n',
    },
}

# bytes that are not UTF-8 (latin-1 e-acute) make a whole file unreadable
LATIN1 = "customer_id,email,status,country,signup_ts,updated_at\nC9,jos\xe9@example.com,active,ES,,2024-01-01T00:00:00Z\n".encode(  # noqa: E501
    "latin-1"
)

PASS_2: dict[str, dict[str, str | bytes]] = {
    "customers": {"customers_003_latin1.csv": LATIN1},
    "orders": {
        # the order of the orphaned item arrives: the item loads, its reject is resolved
        "orders_2024-03-05.csv": (
            "order_id,customer_id,order_ts,status,channel\n"
            "O9,C2,2024-03-05T15:00:00Z,placed,web\n"
            "O2,C2,2024-03-02T01:30:00Z,cancelled,mobile\n"
        ),
        # same name, same content: a no-op
        "orders_2024-03-02.csv": PASS_1["orders"]["orders_2024-03-02.csv"],
    },
    "payments": {
        # same name, different content: name_reused, quarantined, nothing loads
        "payments_2024-03-01.jsonl": (
            '{"payment_id": "Y99", "order_id": "O1", "amount": 1.00, "status": "settled", '
            '"paid_ts": "2024-03-01T09:05:00Z"}\n'
        ),
        "payments_2024-03-06.jsonl": (
            '{"payment_id": "Y1", "order_id": "O1", "amount": 52.50, "method": "card", '
            '"status": "refunded", "paid_ts": "2024-03-01T09:05:00Z"}\n'
        ),
    },
    "events": {"events_2024-03-02T0000.jsonl": ""},
}


def _land_all(settings, files: dict[str, dict[str, str | bytes]]) -> None:
    for source, named in files.items():
        for name, content in named.items():
            land(settings, source, name, content)


def _as_bytes(files: dict[str, dict[str, str | bytes]]) -> dict[str, dict[str, bytes]]:
    return {
        s: {n: c.encode() if isinstance(c, str) else c for n, c in named.items()}
        for s, named in files.items()
    }


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        settings = use_temp_platform(tmp_path_factory.mktemp("contract"), mp)
        yield _load(settings)


def _load(settings):
    _land_all(settings, PASS_1)
    do_ingest(settings)
    _land_all(settings, PASS_2)
    do_ingest(settings)
    do_backfill(settings, START, END)
    oracle = Oracle(START, END)
    oracle.ingest_pass(_as_bytes(PASS_1))
    oracle.ingest_pass(_as_bytes(PASS_2))
    return settings, oracle


@pytest.mark.parametrize("table", list(TABLE_KEYS))
def test_warehouse_equals_reference_model(loaded, table):
    settings, oracle = loaded
    expected = oracle.tables()[table]
    columns = list(expected[0]) if expected else None
    actual = read_table(settings, table, columns)
    assert actual == sort_rows(expected, TABLE_KEYS[table])


def test_rejects_equal_reference_model(loaded):
    settings, oracle = loaded
    cols = ["source", "file_name", "row_number", "reason", "partition_date", "resolved"]
    actual = [
        {**{c: r[c] for c in cols[:-1]}, "resolved": r["resolved_at"] is not None}
        for r in read_table_rejects(settings)
    ]
    expected = [{c: r[c] for c in cols} for r in oracle.rejects()]
    key = ["source", "file_name", "row_number"]
    assert sort_rows(actual, key) == sort_rows(expected, key)


def read_table_rejects(settings):
    import duckdb

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        rel = conn.sql("SELECT * FROM quarantine.rejects")
        return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def test_hand_computed_values(loaded):
    settings, _ = loaded
    orders = {r["order_id"]: r for r in read_table(settings, "warehouse.fct_orders")}
    # superseded status: the later file's version wins
    assert orders["O1"]["status"] == "shipped"
    # O3 was corrected to 03-04 and lives only there, its items with it
    assert orders["O3"]["order_date"] == dt.date(2024, 3, 4)
    items = {
        (r["order_id"], r["line_number"]): r
        for r in read_table(settings, "warehouse.fct_order_items")
    }
    assert items[("O3", 1)]["order_date"] == dt.date(2024, 3, 4)
    # point in time: O1 (03-01) costs P1 at 4.00 (Home); O3 (03-04) at 5.00 (Lighting)
    assert items[("O1", 1)]["line_cost"] == D("8.00")
    assert items[("O1", 1)]["product_category"] == "Home"
    assert items[("O3", 1)]["line_cost"] == D("15.00")
    assert items[("O3", 1)]["product_category"] == "Lighting"
    # O1's P2 line: the order is older than P2's first version, which it uses
    assert items[("O1", 2)]["line_cost"] == D("6.25")
    # an unknown product keeps NULL cost and category
    assert items[("O4", 1)]["line_cost"] is None
    assert items[("O4", 1)]["product_category"] is None
    # orphan O9's item loaded once its order arrived
    assert items[("O9", 1)]["order_date"] == dt.date(2024, 3, 5)
    # O11 is dated after the configured range: kept in the lake, not published
    assert "O11" not in orders
    sales = {r["order_date"]: r for r in read_table(settings, "marts.daily_sales")}
    # 03-01: O1 = 2 x 20.00 + 12.50 = 52.50 revenue, 8.00 + 6.25 = 14.25 cost
    assert sales[dt.date(2024, 3, 1)]["revenue"] == D("52.50")
    assert sales[dt.date(2024, 3, 1)]["gross_profit"] == D("38.25")
    assert sales[dt.date(2024, 3, 1)]["profit_margin"] == D("0.7286")  # 38.25/52.50=0.72857
    # O2 was cancelled in pass 2 and O5 was cancelled all along: no sales on 03-02/03-03
    assert dt.date(2024, 3, 2) in sales  # O4 (placed) remains on 03-02
    assert sales[dt.date(2024, 3, 2)]["order_count"] == 1
    assert dt.date(2024, 3, 3) not in sales
    funnel = {r["date"]: r for r in read_table(settings, "marts.daily_funnel")}
    # 03-01: S1 (full funnel), S2 (page view before midnight), S4; S3's event was rejected
    assert funnel[dt.date(2024, 3, 1)]["sessions"] == 3
    assert funnel[dt.date(2024, 3, 1)]["purchases"] == 1
    assert funnel[dt.date(2024, 3, 1)]["conversion_rate"] == D("0.3333")
    sessions = {
        (r["session_id"], r["session_date"]): r
        for r in read_table(settings, "warehouse.fct_sessions")
    }
    s1 = sessions[("S1", dt.date(2024, 3, 1))]
    assert s1["event_count"] == 5  # E5 redelivered, counted once
    assert s1["user_id"] == "C1"  # first non-NULL by (event_ts, event_id)
    payments = {
        (r["paid_date"], r["method"]): r for r in read_table(settings, "marts.daily_payments")
    }
    # Y1 was refunded by a later file
    assert payments[(dt.date(2024, 3, 1), "card")]["refunded_amount"] == D("52.50")
    assert payments[(dt.date(2024, 3, 1), "card")]["settled_amount"] == D("0.00")
    customers = read_table(settings, "warehouse.dim_customer")
    # C1: active -> inactive -> active is three versions; C2's unchanged snapshot is not one
    assert [r["status"] for r in customers if r["customer_id"] == "C1"] == [
        "active",
        "inactive",
        "active",
    ]
    assert len([r for r in customers if r["customer_id"] == "C2"]) == 1


def test_bad_input_is_kept(loaded):
    settings, _ = loaded
    reasons = {(r["file_name"], r["row_number"]): r for r in read_table_rejects(settings)}
    expect = {
        ("customers_001.csv", 3): "out_of_domain",
        ("products_001.csv", 3): "out_of_domain",
        ("products_001.csv", 4): "bad_timestamp",
        ("orders_2024-03-01.csv", 6): "missing_required",
        ("orders_2024-03-01.csv", 7): "bad_timestamp",
        ("orders_2024-03-01.csv", 8): "out_of_domain",
        ("orders_2024-03-01.csv", 9): "duplicate_key",
        ("order_items_2024-03-01.csv", 8): "orphan_order_item",
        ("order_items_2024-03-01.csv", 9): "out_of_domain",
        ("order_items_2024-03-01.csv", 11): "bad_number",
        ("order_items_2024-03-01.csv", 12): "bad_number",
        ("order_items_2024-03-01.csv", 13): "malformed_record",
        ("payments_2024-03-01.jsonl", 5): "out_of_domain",
        ("payments_2024-03-01.jsonl", 6): "out_of_domain",
        ("payments_2024-03-01.jsonl", 7): "bad_type",
        ("payments_2024-03-01.jsonl", 8): "malformed_record",
        ("events_2024-03-01T0900.jsonl", 8): "out_of_domain",
    }
    assert {k: reasons[k]["reason"] for k in expect} == expect
    assert len(reasons) == len(expect)
    orphan = reasons[("order_items_2024-03-01.csv", 8)]
    assert orphan["resolved_at"] is not None
    assert orphan["raw_record"] == "O9,1,P1,1,20.00"
    assert reasons[("payments_2024-03-01.jsonl", 8)]["raw_record"] == "this is not json"
    # unreadable and reused-name files are quarantined whole, with a reason beside them
    quarantine = settings.quarantine_dir
    for source, name, reason in [
        ("orders", "orders_broken.csv", "missing_column"),
        ("payments", "payments_garbage.jsonl", "no_json_object"),
        ("customers", "customers_003_latin1.csv", "not_utf8"),
        ("payments", "payments_2024-03-01.jsonl", "name_reused"),
        ("events", "events_2024-03-02T0000.jsonl", "empty"),
    ]:
        note = json.loads((quarantine / source / f"{name}.error.json").read_text())
        assert note["reason"] == reason, (name, note)
        assert (quarantine / source / name).exists()
    # the original of the reused name stays archived; in-flight names stay in landing
    archived = (settings.archive_dir / "payments" / "payments_2024-03-01.jsonl").read_text()
    assert '"Y1"' in archived
    assert (settings.landing_dir / "orders" / "orders_next.csv.tmp").exists()
    assert (settings.landing_dir / "events" / ".events_inflight.jsonl").exists()
    assert (settings.landing_dir / "events" / "events_late.jsonl.partial").exists()
    assert not (settings.landing_dir / "orders" / "orders_2024-03-02.csv").exists()
