"""Hand-computed checks of the reference model (oracle) against the data contract."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from assets_pkg_tests.oracle import Oracle, ratio

JAN_1 = date(2024, 1, 1)
JAN_31 = date(2024, 1, 31)

ORDERS_HEADER = b"order_id,customer_id,order_ts,status,channel\n"
ITEMS_HEADER = b"order_id,line_number,product_id,quantity,unit_price\n"
PRODUCTS_HEADER = b"product_id,name,category,list_price,unit_cost,updated_at\n"
CUSTOMERS_HEADER = b"customer_id,email,status,country,signup_ts,updated_at\n"


def m(text: str) -> Decimal:
    return Decimal(text)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def rejects(oracle: Oracle) -> list[tuple]:
    return [
        (r["file_name"], r["row_number"], r["reason"], r["partition_date"])
        for r in oracle.rejects()
    ]


def column(rows: list[dict], *names: str) -> list[tuple]:
    return [tuple(row[n] for n in names) for row in rows]


# --------------------------------------------------------------------------- row rejects


ORDERS_CSV = (
    b"\xef\xbb\xbf order_id , customer_id,order_ts,status,channel,note\r\n"
    b'o1, c1 ,2024-01-02T10:00:00Z,placed,web,"hello, world"\r\n'  # 1 ok
    b'o2,,2024-01-02 11:00,placed,web,"multi\r\nline"\r\n'  # 2 missing_required
    b"\r\n"  # blank: skipped, not counted
    b"o3,c1,2024-01-02,placed,web,x\r\n"  # 3 bare date
    b"o4,c1,2024-01-02T03:00:00+05:00,shipping,web,x\r\n"  # 4 out_of_domain, UTC Jan 1
    b"o5,c1,2024-01-02T10:00:00Z,placed,web,x,extra\r\n"  # 5 more fields than header
    b"o6,c1,2024-02-30T10:00:00,placed,web,x\r\n"  # 6 impossible date
    b"o7,c1,2024-01-03T10:00:00Z,placed,web,x\r\n"  # 7 duplicate_key (row 8 wins)
    b"o7,c1,2024-01-03T11:00:00Z,placed,web,x\r\n"  # 8 ok
    b"o8,c1,2024-01-04T10:00:00.1234567Z,delivered,store,x\r\n"  # 9 ok
    b"o8,c1,2024-01-04 10:00:00.123456,delivered,store,y\r\n"  # 10 same content: collapsed
    b"o9, c2 ,2024-01-05T10:00:00Z,Placed,web,x\r\n"  # 11 enum is case sensitive
    b"o10,c1,2024-01-05T24:00:00Z,placed,,x\r\n"  # 12 hour 24
    b"o12,,bad,placed,web,x\r\n"  # 13 missing_required before bad_timestamp
    b"o13,c1,nope,bogus,web,x\r\n"  # 14 bad_timestamp before out_of_domain
    b"o11,c1,2024-01-05T10:00:00+0130,returned,,x"  # 15 ok, no final line end
)

ITEMS_CSV = ITEMS_HEADER + (
    b"o1,1,p1,2,5.00\n"  # 1 ok
    b"o1,2,p1,3.0,5.00\n"  # 2 bad_number (quantity)
    b"o1,3,p1,1,1.234\n"  # 3 bad_number (3 decimals)
    b"o1,0,p1,1,1.00\n"  # 4 out_of_domain (line_number)
    b"o1,4,p1,0,1.00\n"  # 5 out_of_domain (quantity)
    b"o1,5,p1,1,-1.00\n"  # 6 out_of_domain (unit_price)
    b"o99,1,p1,1,1.00\n"  # 7 orphan
    b"o1,6,,1,1.00\n"  # 8 missing_required
    b"o1,7,p1,1e3,1.00\n"  # 9 bad_number
    b"o3,1,p1,1,1.00\n"  # 10 orphan: o3 was rejected
)


def test_csv_rejects_reasons_and_row_numbers():
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass({"orders": {"o.csv": ORDERS_CSV}, "order_items": {"i.csv": ITEMS_CSV}})
    jan2 = date(2024, 1, 2)
    assert rejects(oracle) == [
        ("o.csv", 2, "missing_required", jan2),
        ("o.csv", 3, "bad_timestamp", None),
        ("o.csv", 4, "out_of_domain", JAN_1),
        ("o.csv", 5, "malformed_record", None),
        ("o.csv", 6, "bad_timestamp", None),
        ("o.csv", 7, "duplicate_key", date(2024, 1, 3)),
        ("o.csv", 11, "out_of_domain", date(2024, 1, 5)),
        ("o.csv", 12, "bad_timestamp", None),
        ("o.csv", 13, "missing_required", None),
        ("o.csv", 14, "bad_timestamp", None),
        ("i.csv", 2, "bad_number", jan2),
        ("i.csv", 3, "bad_number", jan2),
        ("i.csv", 4, "out_of_domain", jan2),
        ("i.csv", 5, "out_of_domain", jan2),
        ("i.csv", 6, "out_of_domain", jan2),
        ("i.csv", 7, "orphan_order_item", None),
        ("i.csv", 8, "missing_required", jan2),
        ("i.csv", 9, "bad_number", jan2),
        ("i.csv", 10, "orphan_order_item", None),
    ]
    assert all(r["source"] in {"orders", "order_items"} for r in oracle.rejects())
    assert not any(r["resolved"] for r in oracle.rejects())
    assert oracle.quarantined == []
    orders = oracle.tables()["warehouse.fct_orders"]
    assert column(orders, "order_id", "customer_id", "order_ts", "status", "channel") == [
        ("o1", "c1", ts("2024-01-02 10:00:00"), "placed", "web"),
        ("o11", "c1", ts("2024-01-05 08:30:00"), "returned", None),
        ("o7", "c1", ts("2024-01-03 11:00:00"), "placed", "web"),
        ("o8", "c1", ts("2024-01-04 10:00:00.123456"), "delivered", "store"),
    ]
    assert column(orders, "item_count", "revenue") == [
        (1, m("10.00")),
        (0, m("0.00")),
        (0, m("0.00")),
        (0, m("0.00")),
    ]


PAYMENTS_JSONL = b"\n".join(
    [
        b'{"payment_id": "p1", "order_id": 17, "amount": 12.50, "method": "card",'
        b' "status": "settled", "paid_ts": "2024-01-02T10:00:00Z"}',
        b"",
        b"this is not json",
        b'{"payment_id": "p2", "order_id": "o1", "amount": {"v": 1}, "status": "settled",'
        b' "paid_ts": "2024-01-02T10:00:00Z"}',
        b'{"payment_id": "p5", "order_id": "o1", "amount": "1.00", "currency": "EUR",'
        b' "status": "settled", "paid_ts": "2024-01-03T01:00:00+02:00"}',
        b'{"payment_id": "p6", "order_id": "o1", "amount": 0, "status": "settled",'
        b' "paid_ts": "2024-01-02T10:00:00Z"}',
        b'{"payment_id": "p7", "order_id": "o1", "amount": 1e2, "status": "settled",'
        b' "paid_ts": "2024-01-02T10:00:00Z"}',
        b"[1, 2]",
        b'{"payment_id": 17, "order_id": "o1", "amount": "3", "currency": null,'
        b' "status": "refunded", "paid_ts": "2024-01-04 08:00"}\r',
        b'{"payment_id": "p10", "order_id": "o1", "amount": "x", "status": "bogus",'
        b' "paid_ts": "2024-01-04"}',
        b'{"payment_id": "p11", "order_id": "o1", "amount": "1.00", "status": "bogus",'
        b' "paid_ts": "2024-13-01T00:00"}',
        b'{"payment_id": "p12", "order_id": "o1", "amount": "1.00", "status": "settled"}',
        b'{"payment_id": "p13", "order_id": "o1", "amount": "1.00", "currency": "usd",'
        b' "status": "settled", "paid_ts": "2024-01-04T00:00:00Z"}',
        b"",
    ]
)


def test_jsonl_rejects_line_numbers_count_blank_lines():
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass({"payments": {"pay.jsonl": PAYMENTS_JSONL}})
    jan2 = date(2024, 1, 2)
    assert rejects(oracle) == [
        ("pay.jsonl", 3, "malformed_record", None),
        ("pay.jsonl", 4, "bad_type", jan2),
        ("pay.jsonl", 5, "out_of_domain", jan2),  # EUR; 23:00 UTC on Jan 2
        ("pay.jsonl", 6, "out_of_domain", jan2),
        ("pay.jsonl", 7, "bad_number", jan2),
        ("pay.jsonl", 8, "malformed_record", None),
        ("pay.jsonl", 10, "bad_number", None),  # amount before paid_ts, bare date
        ("pay.jsonl", 11, "bad_timestamp", None),  # parse rule before domain rule
        ("pay.jsonl", 12, "missing_required", None),
        ("pay.jsonl", 13, "out_of_domain", date(2024, 1, 4)),  # currency is exactly USD
    ]
    tables = oracle.tables()
    assert tables["warehouse.fct_payments"] == [
        {
            "payment_id": "17",
            "order_id": "o1",
            "paid_date": date(2024, 1, 4),
            "paid_ts": ts("2024-01-04 08:00:00"),
            "amount": m("3.00"),
            "currency": "USD",
            "method": None,
            "status": "refunded",
        },
        {
            "payment_id": "p1",
            "order_id": "17",
            "paid_date": jan2,
            "paid_ts": ts("2024-01-02 10:00:00"),
            "amount": m("12.50"),
            "currency": "USD",
            "method": "card",
            "status": "settled",
        },
    ]
    assert column(
        tables["marts.daily_payments"],
        "paid_date",
        "method",
        "settled_amount",
        "refunded_amount",
        "payment_count",
    ) == [
        (jan2, "card", m("12.50"), m("0.00"), 1),
        (date(2024, 1, 4), None, m("0.00"), m("3.00"), 1),
    ]


# --------------------------------------------------------------------------- files


GOOD_ORDER = ORDERS_HEADER + b"o1,c1,2024-01-02T00:00:00Z,placed,web\n"


def test_file_quarantine_reasons_and_unlanded_names():
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass(
        {
            "orders": {
                "a_utf16.csv": "order_id,customer_id\n".encode("utf-16"),
                "a_utf8.csv": ORDERS_HEADER + b"o9,c\xff,2024-01-02T00:00:00Z,placed,web\n",
                "b_empty.csv": b"",
                "c_blank.csv": b"\xef\xbb\xbf \r\n\r\n",
                "d_missing.csv": b"order_id,customer_id,order_ts\no1,c1,2024-01-02T00:00Z\n",
                "e_twice.csv": b"order_id,customer_id,order_ts,status, order_id\n",
                "f_quote.csv": ORDERS_HEADER + b'o1,"c1"x,2024-01-02T00:00:00Z,placed,web\n',
                "g_open.csv": ORDERS_HEADER + b'o1,"c1,2024-01-02T00:00:00Z,placed,web\n',
                "h_good.csv": GOOD_ORDER,
                ".hidden.csv": b"\xff",
                "late.csv.tmp": ORDERS_HEADER + b"o2,c1,2024-01-03T00:00:00Z,placed,web\n",
                "late.csv.partial": b"\xff",
            },
            "payments": {"x.jsonl": b"[1]\nnot json\n\n"},
            "events": {"y.jsonl": b"\n\n"},
        }
    )
    assert oracle.quarantined == [
        ("orders", "a_utf16.csv", "not_utf8"),
        ("orders", "a_utf8.csv", "not_utf8"),
        ("orders", "b_empty.csv", "empty"),
        ("orders", "c_blank.csv", "empty"),
        ("orders", "d_missing.csv", "missing_column"),
        ("orders", "e_twice.csv", "duplicate_column"),
        ("orders", "f_quote.csv", "bad_csv"),
        ("orders", "g_open.csv", "bad_csv"),
        ("payments", "x.jsonl", "no_json_object"),
        ("events", "y.jsonl", "empty"),
    ]
    assert oracle.rejects() == []
    assert column(oracle.tables()["warehouse.fct_orders"], "order_id") == [("o1",)]

    # The producer renames the finished file into place: now it lands.
    late = ORDERS_HEADER + b"o2,c1,2024-01-03T00:00:00Z,placed,web\n"
    oracle.ingest_pass({"orders": {"late.csv": late}})
    assert column(oracle.tables()["warehouse.fct_orders"], "order_id") == [("o1",), ("o2",)]
    assert len(oracle.quarantined) == 10


def test_same_content_is_noop_and_name_reused_is_quarantined():
    original = GOOD_ORDER + b"o2,c1,not-a-time,placed,web\n"
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass({"orders": {"a.csv": original}})
    assert rejects(oracle) == [("a.csv", 2, "bad_timestamp", None)]

    oracle.ingest_pass({"orders": {"a.csv": original}})
    assert oracle.quarantined == []
    assert len(oracle.rejects()) == 1  # not loaded twice

    changed = ORDERS_HEADER + b"o1,c1,2024-01-02T00:00:00Z,cancelled,web\n"
    oracle.ingest_pass({"orders": {"a.csv": changed}})
    assert oracle.quarantined == [("orders", "a.csv", "name_reused")]
    assert column(oracle.tables()["warehouse.fct_orders"], "order_id", "status") == [
        ("o1", "placed")
    ]

    newer = ORDERS_HEADER + b"o1,c1,2024-01-02T00:00:00Z,shipped,web\n"
    oracle.ingest_pass({"orders": {"a.csv": original, "b.csv": newer}})
    assert len(oracle.quarantined) == 1
    assert len(oracle.rejects()) == 1
    assert column(oracle.tables()["warehouse.fct_orders"], "order_id", "status") == [
        ("o1", "shipped")
    ]


# --------------------------------------------------------------------------- versions


def order_file(*rows: str) -> bytes:
    return ORDERS_HEADER + "".join(row + "\n" for row in rows).encode()


def test_later_file_supersedes_and_earlier_name_arriving_late_does_not():
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass({"orders": {"orders_1.csv": order_file("o1,c1,2024-01-02 00:00,placed,")}})
    oracle.ingest_pass({"orders": {"orders_2.csv": order_file("o1,c1,2024-01-02 00:00,shipped,")}})
    status = column(oracle.tables()["warehouse.fct_orders"], "order_id", "status")
    assert status == [("o1", "shipped")]

    oracle.ingest_pass({"orders": {"orders_0.csv": order_file("o1,c2,2024-01-02 00:00,returned,")}})
    status = column(oracle.tables()["warehouse.fct_orders"], "order_id", "customer_id", "status")
    assert status == [("o1", "c1", "shipped")]
    assert oracle.rejects() == []  # superseding is not a reject

    # In one pass, name order decides, not the dict's order.
    same_pass = Oracle(JAN_1, JAN_31)
    same_pass.ingest_pass(
        {
            "orders": {
                "b.csv": order_file("o1,c1,2024-01-02 00:00,delivered,"),
                "a.csv": order_file("o1,c1,2024-01-02 00:00,placed,"),
            }
        }
    )
    status = column(same_pass.tables()["warehouse.fct_orders"], "status")
    assert status == [("delivered",)]


def test_orphan_item_rejected_then_resolved_by_a_later_pass():
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass({"order_items": {"i1.csv": ITEMS_HEADER + b"o9,1,p1,2,3.00\n"}})
    assert oracle.rejects() == [
        {
            "source": "order_items",
            "file_name": "i1.csv",
            "row_number": 1,
            "reason": "orphan_order_item",
            "partition_date": None,
            "resolved": False,
        }
    ]
    assert oracle.tables()["warehouse.fct_order_items"] == []

    oracle.ingest_pass({"orders": {"o1.csv": order_file("o9,c1,2024-01-05T12:00:00Z,placed,web")}})
    [reject] = oracle.rejects()
    assert reject["resolved"] is True
    tables = oracle.tables()
    assert tables["warehouse.fct_order_items"] == [
        {
            "order_id": "o9",
            "line_number": 1,
            "product_id": "p1",
            "product_category": None,
            "order_date": date(2024, 1, 5),
            "quantity": 2,
            "unit_price": m("3.00"),
            "line_revenue": m("6.00"),
            "line_cost": None,
        }
    ]
    assert column(tables["warehouse.fct_orders"], "item_count", "revenue", "cost") == [
        (1, m("6.00"), None)
    ]
    assert tables["marts.daily_sales"] == [
        {
            "order_date": date(2024, 1, 5),
            "revenue": m("6.00"),
            "cost": None,
            "gross_profit": None,
            "profit_margin": None,
            "order_count": 1,
        }
    ]
    assert column(tables["marts.daily_sales_by_category"], "product_category", "total_sales") == [
        (None, m("6.00"))
    ]

    # Orders are applied before items within one pass, whatever the file names.
    same_pass = Oracle(JAN_1, JAN_31)
    same_pass.ingest_pass(
        {
            "order_items": {"a.csv": ITEMS_HEADER + b"o9,1,p1,2,3.00\n"},
            "orders": {"z.csv": order_file("o9,c1,2024-01-05T12:00:00Z,placed,web")},
        }
    )
    assert same_pass.rejects() == []
    assert len(same_pass.tables()["warehouse.fct_order_items"]) == 1


MOVING_ORDER_PASSES = [
    {
        "orders": {"o_1.csv": order_file("o1,c1,2024-01-02T09:00:00Z,placed,web")},
        "order_items": {"i_1.csv": ITEMS_HEADER + b"o1,1,p1,1,10.00\no1,2,p1,2,5.00\n"},
    },
    {"orders": {"o_2.csv": order_file("o1,c1,2024-01-03T09:00:00Z,placed,web")}},
    {"orders": {"o_3.csv": order_file("o1,c1,2024-02-15T09:00:00Z,placed,web")}},
]


def run_passes(passes: list[dict], end: date) -> Oracle:
    oracle = Oracle(JAN_1, end)
    for landing in passes:
        oracle.ingest_pass(landing)
    return oracle


def test_order_moving_date_takes_its_items():
    tables = run_passes(MOVING_ORDER_PASSES[:2], JAN_31).tables()
    jan3 = date(2024, 1, 3)
    assert column(tables["warehouse.fct_order_items"], "line_number", "order_date") == [
        (1, jan3),
        (2, jan3),
    ]
    assert column(tables["marts.daily_sales"], "order_date", "revenue", "order_count") == [
        (jan3, m("20.00"), 1)
    ]

    # Moved out of the range: gone from every January table, published once the range covers it.
    tables = run_passes(MOVING_ORDER_PASSES, JAN_31).tables()
    assert tables["warehouse.fct_orders"] == []
    assert tables["warehouse.fct_order_items"] == []
    assert tables["marts.daily_sales"] == []
    tables = run_passes(MOVING_ORDER_PASSES, date(2024, 2, 29)).tables()
    assert column(tables["warehouse.fct_order_items"], "order_date") == [
        (date(2024, 2, 15),),
        (date(2024, 2, 15),),
    ]
    assert column(tables["marts.daily_sales"], "order_date") == [(date(2024, 2, 15),)]


# --------------------------------------------------------------------------- events


def event(event_id: str, session: str, kind: str, at: str, user: str | None = None) -> bytes:
    user_json = "null" if user is None else f'"{user}"'
    return (
        f'{{"event_id": {event_id}, "user_id": {user_json}, "session_id": "{session}",'
        f' "event_type": "{kind}", "event_ts": "{at}"}}\n'
    ).encode()


def test_events_first_delivery_wins_and_sessions():
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass(
        {
            "events": {
                "e_b.jsonl": event('"e1"', "s1", "page_view", "2024-01-02T10:00:00Z", "u1")
                + event('"e2"', "s1", "product_view", "2024-01-02T10:01:00Z"),
                "e_a.jsonl": event('"e2"', "s1", "purchase", "2024-01-02T10:05:00Z"),
            }
        }
    )
    oracle.ingest_pass(
        {
            "events": {
                "e_0.jsonl": event('"e1"', "s1", "purchase", "2024-01-09T10:00:00Z", "u9")
                # event_id compared as text: "10" < "11" < "9"
                + event("10", "s2", "product_view", "2024-01-02T11:00:00Z")
                + event("9", "s2", "add_to_cart", "2024-01-02T11:00:00Z", "u9")
                + event("11", "s2", "page_view", "2024-01-02T11:00:00Z", "u11")
                + event("31", "s3", "page_view", "2024-01-02T23:59:00Z")
                + event("33", "s3", "checkout", "2024-01-03T00:30:00+01:00", "u3")
                + event("32", "s3", "purchase", "2024-01-03 00:01:00+00:00")
            }
        }
    )
    assert oracle.rejects() == []
    assert oracle.dropped_events == 2
    tables = oracle.tables()
    jan2, jan3 = date(2024, 1, 2), date(2024, 1, 3)
    assert tables["warehouse.fct_sessions"] == [
        {
            "session_id": "s1",
            "user_id": "u1",
            "session_date": jan2,
            "session_start": ts("2024-01-02 10:00"),
            "session_end": ts("2024-01-02 10:05"),
            "event_count": 2,
            "product_views": 0,
            "add_to_cart": 0,
            "checkouts": 0,
            "purchases": 1,
        },
        {
            "session_id": "s2",
            "user_id": "u11",
            "session_date": jan2,
            "session_start": ts("2024-01-02 11:00"),
            "session_end": ts("2024-01-02 11:00"),
            "event_count": 3,
            "product_views": 1,
            "add_to_cart": 1,
            "checkouts": 0,
            "purchases": 0,
        },
        {
            "session_id": "s3",
            "user_id": "u3",
            "session_date": jan2,
            "session_start": ts("2024-01-02 23:30"),
            "session_end": ts("2024-01-02 23:59"),
            "event_count": 2,
            "product_views": 0,
            "add_to_cart": 0,
            "checkouts": 1,
            "purchases": 0,
        },
        {
            "session_id": "s3",
            "user_id": None,
            "session_date": jan3,
            "session_start": ts("2024-01-03 00:01"),
            "session_end": ts("2024-01-03 00:01"),
            "event_count": 1,
            "product_views": 0,
            "add_to_cart": 0,
            "checkouts": 0,
            "purchases": 1,
        },
    ]
    assert tables["marts.daily_funnel"] == [
        {
            "date": jan2,
            "sessions": 3,
            "product_views": 1,
            "add_to_cart": 1,
            "checkouts": 1,
            "purchases": 1,
            "conversion_rate": m("0.3333"),
        },
        {
            "date": jan3,
            "sessions": 1,
            "product_views": 0,
            "add_to_cart": 0,
            "checkouts": 0,
            "purchases": 1,
            "conversion_rate": m("1.0000"),
        },
    ]


# --------------------------------------------------------------------------- dimensions


def test_scd2_aba_is_three_versions_and_aab_is_two():
    customers = CUSTOMERS_HEADER + (
        b"A1,a@x,active,US,2023-12-01T00:00:00Z,2024-01-03T00:00:00Z\n"
        b"A1,a@x,active,US,2023-12-01T00:00:00Z,2024-01-01T00:00:00Z\n"
        b"A1,b@x,active,US,2023-12-01T00:00:00Z,2024-01-02T00:00:00Z\n"
        b"B1,b@x,,,,2024-01-01T00:00:00Z\n"
        b"B1, b@x ,,,,2024-01-02T01:00:00+01:00\n"  # same content, NULL-safe
        b"B1,b@x,,DE,,2024-01-03T00:00:00Z\n"
        b"C1,c@x,pending,FR,,2024-01-01T00:00:00Z\n"  # duplicate_key: row 8 wins
        b"C1,c@x,active,FR,,2024-01-01T00:00:00Z\n"
    )
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass({"customers": {"c1.csv": customers}})
    assert rejects(oracle) == [("c1.csv", 7, "duplicate_key", None)]
    jan = [None] + [datetime(2024, 1, d) for d in range(1, 4)]
    dim = oracle.tables()["warehouse.dim_customer"]
    assert column(dim, "customer_id", "email", "country", "valid_from", "valid_to") == [
        ("A1", "a@x", "US", jan[1], jan[2]),
        ("A1", "b@x", "US", jan[2], jan[3]),
        ("A1", "a@x", "US", jan[3], None),
        ("B1", "b@x", None, jan[1], jan[3]),
        ("B1", "b@x", "DE", jan[3], None),
        ("C1", "c@x", "FR", jan[1], None),
    ]
    assert column(dim, "is_current") == [(False,), (False,), (True,), (False,), (True,), (True,)]
    assert dim[0]["signup_ts"] == datetime(2023, 12, 1)
    assert dim[5]["status"] == "active"

    # A later file replaces the (A1, Jan 2) version: A, A, A collapses to one version.
    fix = CUSTOMERS_HEADER + b"A1,a@x,active,US,2023-12-01T00:00:00Z,2024-01-02 00:00:00+00:00\n"
    oracle.ingest_pass({"customers": {"c2.csv": fix}})
    dim = oracle.tables()["warehouse.dim_customer"]
    assert column(dim, "customer_id", "valid_from", "valid_to", "is_current")[:1] == [
        ("A1", jan[1], None, True)
    ]
    assert len(dim) == 4


PRODUCTS_CSV = PRODUCTS_HEADER + (
    b"P1,Widget,tools,10.00,3.00,2024-01-10T00:00:00Z\n"
    b"P1,Widget,tools,10.00,2.00,2024-01-05T00:00:00Z\n"
    b"P2,Gadget,toys,5.00,,2024-01-01T00:00:00Z\n"
)


def test_point_in_time_product_cost_and_category():
    orders = order_file(
        "O1,c1,2024-01-02T00:00:00Z,placed,web",  # older than the first P1 version
        "O2,c1,2024-01-09T23:59:59.999999Z,placed,web",
        "O3,c1,2024-01-10T00:00:00Z,placed,web",  # exactly the second valid_from
        "O4,c1,2024-01-11T00:00:00Z,placed,web",
        "O5,c1,2024-01-11T01:00:00Z,shipped,web",
        "O6,c1,2024-01-11T02:00:00Z,delivered,web",
    )
    items = ITEMS_HEADER + (
        b"O1,1,P1,2,10.00\n"
        b"O2,1,P1,1,10.00\n"
        b"O3,1,P1,1,10.00\n"
        b"O4,1,P1,1,10.00\n"
        b"O4,2,PX,1,4.00\n"
        b"O5,1,PX,1,4.00\n"
        b"O6,1,P2,1,5.00\n"
    )
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass(
        {
            "products": {"p.csv": PRODUCTS_CSV},
            "orders": {"o.csv": orders},
            "order_items": {"i.csv": items},
        }
    )
    tables = oracle.tables()
    assert column(tables["warehouse.dim_product"], "product_id", "unit_cost", "is_current") == [
        ("P1", m("2.00"), False),
        ("P1", m("3.00"), True),
        ("P2", None, True),
    ]
    items_out = tables["warehouse.fct_order_items"]
    assert column(items_out, "order_id", "product_category", "line_revenue", "line_cost") == [
        ("O1", "tools", m("20.00"), m("4.00")),
        ("O2", "tools", m("10.00"), m("2.00")),
        ("O3", "tools", m("10.00"), m("3.00")),
        ("O4", "tools", m("10.00"), m("3.00")),
        ("O4", None, m("4.00"), None),
        ("O5", None, m("4.00"), None),
        ("O6", "toys", m("5.00"), None),
    ]
    assert column(tables["warehouse.fct_orders"], "order_id", "item_count", "revenue", "cost") == [
        ("O1", 1, m("20.00"), m("4.00")),
        ("O2", 1, m("10.00"), m("2.00")),
        ("O3", 1, m("10.00"), m("3.00")),
        ("O4", 2, m("14.00"), m("3.00")),
        ("O5", 1, m("4.00"), None),
        ("O6", 1, m("5.00"), None),
    ]
    jan11 = date(2024, 1, 11)
    assert tables["marts.daily_sales"][-1] == {
        "order_date": jan11,
        "revenue": m("23.00"),
        "cost": m("3.00"),
        "gross_profit": m("20.00"),
        "profit_margin": m("0.8696"),
        "order_count": 3,
    }
    by_category = [r for r in tables["marts.daily_sales_by_category"] if r["date"] == jan11]
    assert column(
        by_category, "product_category", "total_sales", "order_count", "avg_order_value"
    ) == [
        ("tools", m("10.00"), 1, m("10.00")),
        ("toys", m("5.00"), 1, m("5.00")),
        (None, m("8.00"), 2, m("4.00")),
    ]


# --------------------------------------------------------------------------- marts


def test_margin_rounding_zero_revenue_and_excluded_orders():
    products = PRODUCTS_HEADER + (
        b"P1,a,c,1.00,175.31,2024-01-01T00:00:00Z\n"
        b"P2,b,c,1.00,224.69,2024-01-01T00:00:00Z\n"
        b"P3,c,c,1.00,1.00,2024-01-01T00:00:00Z\n"
    )
    orders = order_file(
        "O1,c,2024-01-20T10:00:00Z,placed,web",
        "O2,c,2024-01-21T10:00:00Z,delivered,web",
        "O3,c,2024-01-22T10:00:00Z,shipped,web",
        "O4,c,2024-01-23T10:00:00Z,cancelled,web",
        "O5,c,2024-01-23T11:00:00Z,returned,web",
        "O6,c,2024-01-23T12:00:00Z,placed,web",  # no lines
        "O7,c,2024-01-24T10:00:00Z,placed,web",
        "O8,c,2024-01-24T11:00:00Z,placed,web",
    )
    items = ITEMS_HEADER + (
        b"O1,1,P1,1,200.00\n"
        b"O2,1,P2,1,200.00\n"
        b"O3,1,P3,1,0.00\n"
        b"O4,1,P1,1,50.00\n"
        b"O5,1,P1,1,50.00\n"
        b"O7,1,P3,1,0.02\n"
        b"O8,1,P3,1,0.03\n"
    )
    oracle = Oracle(JAN_1, JAN_31)
    oracle.ingest_pass(
        {
            "products": {"p.csv": products},
            "orders": {"o.csv": orders},
            "order_items": {"i.csv": items},
        }
    )
    tables = oracle.tables()
    assert column(
        tables["marts.daily_sales"],
        "order_date",
        "revenue",
        "cost",
        "gross_profit",
        "profit_margin",
        "order_count",
    ) == [
        (date(2024, 1, 20), m("200.00"), m("175.31"), m("24.69"), m("0.1235"), 1),
        (date(2024, 1, 21), m("200.00"), m("224.69"), m("-24.69"), m("-0.1235"), 1),
        (date(2024, 1, 22), m("0.00"), m("1.00"), m("-1.00"), None, 1),
        (date(2024, 1, 24), m("0.05"), m("2.00"), m("-1.95"), m("-39.0000"), 2),
    ]
    assert column(
        tables["marts.daily_sales_by_category"],
        "date",
        "total_sales",
        "order_count",
        "avg_order_value",
    ) == [
        (date(2024, 1, 20), m("200.00"), 1, m("200.00")),
        (date(2024, 1, 21), m("200.00"), 1, m("200.00")),
        (date(2024, 1, 22), m("0.00"), 1, m("0.00")),
        (date(2024, 1, 24), m("0.05"), 2, m("0.03")),  # 0.025 rounds away from zero
    ]
    orders_out = {r["order_id"]: r for r in tables["warehouse.fct_orders"]}
    assert len(orders_out) == 8
    assert (orders_out["O6"]["item_count"], orders_out["O6"]["revenue"]) == (0, m("0.00"))
    assert orders_out["O6"]["cost"] == m("0.00")


def test_ratio_rounds_half_away_from_zero():
    assert ratio(m("24.69"), m("200.00"), 4) == m("0.1235")
    assert ratio(m("-24.69"), m("200.00"), 4) == m("-0.1235")
    assert ratio(1, 8, 2) == m("0.13")
    assert ratio(-1, 8, 2) == m("-0.13")
    assert ratio(1, 3, 4) == m("0.3333")
    assert str(ratio(2, 1, 4)) == "2.0000"


# --------------------------------------------------------------------------- property


order_rows = st.lists(
    st.tuples(
        st.sampled_from(["1", "01", "a", "b", "10"]),  # order_id (opaque text)
        st.integers(0, 3),  # file index
        st.integers(1, 28),  # day
        st.sampled_from(["placed", "shipped", "delivered", "cancelled", "returned"]),
        st.sampled_from(["c1", "c2"]),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(rows=order_rows, split=st.booleans())
def test_every_order_once_with_its_latest_version(rows, split):
    files: dict[str, list[str]] = {}
    expected: dict[str, tuple[tuple[str, int], tuple]] = {}
    for order_id, file_index, day, status, customer in rows:
        name = f"orders_{file_index}.csv"
        files.setdefault(name, []).append(
            f"{order_id},{customer},2024-01-{day:02d}T12:00:00Z,{status},web"
        )
        version = (name, len(files[name]))
        value = (customer, date(2024, 1, day), status)
        if order_id not in expected or expected[order_id][0] < version:
            expected[order_id] = (version, value)

    oracle = Oracle(JAN_1, JAN_31)
    landing = {name: order_file(*lines) for name, lines in files.items()}
    if split:  # one pass per file, newest name first: arrival order must not matter
        for name in sorted(landing, reverse=True):
            oracle.ingest_pass({"orders": {name: landing[name]}})
    else:
        oracle.ingest_pass({"orders": landing})

    fct = oracle.tables()["warehouse.fct_orders"]
    assert [r["order_id"] for r in fct] == sorted(expected)
    for row in fct:
        assert (row["customer_id"], row["order_date"], row["status"]) == expected[row["order_id"]][
            1
        ]
