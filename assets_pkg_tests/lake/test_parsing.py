"""Example-based tests of landing-file parsing and row validation (``parse_file``).

Every expectation is read off ``CONTRACT.md`` and ``docs/contract-decisions.md``: row
numbers are 1-based data rows of a CSV (blank lines skipped and not counted) and physical
lines of a JSON Lines file; one reject per bad row naming its first failing rule.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from assets_pkg.contracts import SOURCES
from assets_pkg.lake.parsing import (
    ParsedFile,
    UnreadableFile,
    parse_file,
    parse_money,
    parse_timestamp,
)

D = Decimal
T = dt.datetime

ORDERS_HEADER = "order_id,customer_id,order_ts,status,channel\n"
ITEMS_HEADER = "order_id,line_number,product_id,quantity,unit_price\n"
PRODUCTS_HEADER = "product_id,name,category,list_price,unit_cost,updated_at\n"
CUSTOMERS_HEADER = "customer_id,email,status,country,signup_ts,updated_at\n"
GOOD_ORDER = "O9,C9,2024-03-01T10:00:00Z,placed,web"


def parse(source: str, text: str | bytes, name: str = "f_001") -> ParsedFile:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_file(SOURCES[source], name, data)


def valid_frame(source: str, rows: list[dict], name: str = "f_001") -> pl.DataFrame:
    """The expected ``valid`` frame (without ``_raw``): typed contract columns + version."""
    schema = {c.name: c.dtype for c in SOURCES[source].columns}
    schema |= {"_file_name": pl.String(), "_row_number": pl.Int64()}
    full = [{c: r.get(c) for c in schema} | {"_file_name": name} for r in rows]
    return pl.DataFrame(full, schema=schema, orient="row")


def valid_of(parsed: ParsedFile) -> pl.DataFrame:
    return parsed.valid.drop("_raw").sort("_row_number")


def rejects_of(parsed: ParsedFile) -> list[tuple[int, str]]:
    return [(r["row_number"], r["reason"]) for r in parsed.rejects.iter_rows(named=True)]


def reject_frame(rows: list[tuple[int, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"row_number": pl.Int64, "reason": pl.String}, orient="row")


def assert_rejects(parsed: ParsedFile, expected: list[tuple[int, str]]) -> None:
    assert_frame_equal(parsed.rejects.select("row_number", "reason"), reject_frame(expected))


def unreadable(source: str, text: str | bytes) -> str:
    with pytest.raises(UnreadableFile) as info:
        parse(source, text)
    return info.value.reason


def order(order_id: str, ts: T, status: str = "placed", channel: str | None = "web", **kw) -> dict:
    return {
        "order_id": order_id,
        "customer_id": kw.get("customer_id", "C1"),
        "order_ts": ts,
        "status": status,
        "channel": channel,
        "_row_number": kw["row"],
    }


# --------------------------------------------------------------------------- CSV reading


def test_csv_with_bom_and_crlf_loads_every_row():
    text = "\ufeff" + ORDERS_HEADER.replace("\n", "\r\n")
    text += "O1,C1,2024-03-01T10:00:00Z,placed,web\r\nO2,C2,2024-03-02 11:30,shipped,store\r\n"
    parsed = parse("orders", text)
    expected = valid_frame(
        "orders",
        [
            order("O1", T(2024, 3, 1, 10), row=1),
            order("O2", T(2024, 3, 2, 11, 30), "shipped", "store", customer_id="C2", row=2),
        ],
    )
    assert_frame_equal(valid_of(parsed), expected)
    assert parsed.rejects.height == 0
    assert parsed.collapsed == 0


def test_csv_bom_is_not_part_of_the_first_header_name():
    parsed = parse("orders", b"\xef\xbb\xbf" + (ORDERS_HEADER + GOOD_ORDER + "\n").encode())
    assert parsed.valid["order_id"].to_list() == ["O9"]


def test_rfc4180_quoting_commas_quotes_and_newlines_inside_quotes():
    text = (
        PRODUCTS_HEADER + 'P1,"Lamp, ""deluxe""",Home,20.00,4.00,2024-01-01T00:00:00Z\r\n'
        'P2,"two\r\nlines\nhere",Books,1.00,0.50,2024-01-01T00:00:00Z\r\n'
        '"P3","",Toys,,,2024-01-01T00:00:00Z\r\n'
    )
    parsed = parse("products", text)
    base = {"category": None, "updated_at": T(2024, 1, 1)}
    expected = valid_frame(
        "products",
        [
            base
            | {"product_id": "P1", "name": 'Lamp, "deluxe"', "category": "Home"}
            | {"list_price": D("20.00"), "unit_cost": D("4.00"), "_row_number": 1},
            base
            | {"product_id": "P2", "name": "two\r\nlines\nhere", "category": "Books"}
            | {"list_price": D("1.00"), "unit_cost": D("0.50"), "_row_number": 2},
            base | {"product_id": "P3", "name": None, "category": "Toys", "_row_number": 3},
        ],
    )
    assert_frame_equal(valid_of(parsed), expected)


def test_quoted_blank_line_inside_a_value_is_part_of_the_value():
    text = ORDERS_HEADER + 'O1,C1,2024-03-01T00:00,placed,"we\n\nb"\n' + GOOD_ORDER + "\n"
    parsed = parse("orders", text)
    assert parsed.valid["_row_number"].to_list() == [2]
    assert_rejects(parsed, [(1, "out_of_domain")])  # channel 'we\n\nb' is no channel
    assert parsed.rejects["detail"][0] == "channel: 'we\n\nb' is not one of web, mobile, store"


def test_raw_record_keeps_the_quotes_of_a_value_with_a_newline_fast_path():
    text = ORDERS_HEADER + 'O1,C1,2024-03-01T00:00,placed,"we\nb"\n'
    parsed = parse("orders", text)
    assert parsed.rejects["raw_record"].to_list() == ['O1,C1,2024-03-01T00:00,placed,"we\nb"']


def test_raw_record_keeps_the_quotes_of_a_value_with_a_newline_slow_path():
    text = ORDERS_HEADER + 'O1,C1,2024-03-01T00:00,placed,"we\nb"\n\n'  # blank line: slow
    parsed = parse("orders", text)
    assert parsed.rejects["raw_record"].to_list() == ['O1,C1,2024-03-01T00:00,placed,"we\nb"']


def test_extra_and_reordered_columns_missing_optional_column_is_null():
    text = (
        "status, loyalty ,order_ts,customer_id,order_id\n"
        "placed,gold,2024-03-01T10:00:00Z,C1,O1\n"
        "returned,,2024-03-01T11:00:00Z,C2,O2\n"
    )
    parsed = parse("orders", text)
    expected = valid_frame(
        "orders",
        [
            order("O1", T(2024, 3, 1, 10), channel=None, row=1),
            order("O2", T(2024, 3, 1, 11), "returned", None, customer_id="C2", row=2),
        ],
    )
    assert_frame_equal(valid_of(parsed), expected)


def test_header_names_are_trimmed():
    text = " order_id , customer_id ,order_ts,status\t\n" + "O1,C1,2024-03-01T10:00,placed\n"
    assert parse("orders", text).valid["order_id"].to_list() == ["O1"]


def test_padded_values_are_trimmed_and_empty_values_are_null():
    text = (
        CUSTOMERS_HEADER
        + "  C1 ,\ta@x.org\t, active ,  , 2023-01-01T00:00 ,2024-01-01T00:00:00Z \n"
        + 'C2,"   ", pending ,"",,2024-01-01T00:00:00Z\n'
    )
    parsed = parse("customers", text)
    expected = valid_frame(
        "customers",
        [
            {"customer_id": "C1", "email": "a@x.org", "status": "active", "country": None}
            | {"signup_ts": T(2023, 1, 1), "updated_at": T(2024, 1, 1), "_row_number": 1},
            {"customer_id": "C2", "email": None, "status": "pending", "country": None}
            | {"signup_ts": None, "updated_at": T(2024, 1, 1), "_row_number": 2},
        ],
    )
    assert_frame_equal(valid_of(parsed), expected)


def test_blank_whitespace_and_separator_only_lines_are_skipped_and_not_counted():
    text = (
        ORDERS_HEADER
        + "\n"
        + "O1,C1,2024-03-01T10:00,placed,web\r\n"
        + "   \t \n"
        + ",,,,\n"
        + " , ,\t,\n"
        + "\r\n"
        + "O2,C1,2024-03-01T10:00,bogus,web\n"
        + "\n"
        + "O3,C1,2024-03-01T10:00,placed,web\n"
        + "\n\n"
    )
    parsed = parse("orders", text)
    assert parsed.valid["_row_number"].to_list() == [1, 3]
    assert parsed.valid["order_id"].to_list() == ["O1", "O3"]
    assert_rejects(parsed, [(2, "out_of_domain")])


@pytest.mark.parametrize("tail", ["   ", ",,,,", " \t, ,"])
def test_blank_last_line_without_newline_is_skipped(tail):
    parsed = parse("orders", ORDERS_HEADER + GOOD_ORDER + "\n" + tail)
    assert parsed.valid["_row_number"].to_list() == [1]
    assert parsed.rejects.height == 0


def test_a_record_of_empty_values_is_a_blank_line_whichever_path_reads_it():
    # decisions doc: a record whose fields are all empty or whitespace, quoted or not, is
    # skipped and not counted, like a blank line
    body = '"","","","",""\n,,,,\n' + GOOD_ORDER + "\n"
    for text in (ORDERS_HEADER + body, ORDERS_HEADER + body + "\n"):
        parsed = parse("orders", text)
        assert_rejects(parsed, [])
        assert parsed.valid["_row_number"].to_list() == [1]


def test_more_fields_than_the_header_is_malformed_record():
    text = ORDERS_HEADER + "O1,C1,2024-03-01T10:00,placed,web,surplus\n" + GOOD_ORDER + "\n"
    parsed = parse("orders", text)
    assert_rejects(parsed, [(1, "malformed_record")])
    assert parsed.rejects["raw_record"].to_list() == ["O1,C1,2024-03-01T10:00,placed,web,surplus"]
    assert parsed.valid["_row_number"].to_list() == [2]


def test_fewer_fields_than_the_header_leaves_the_rest_null():
    text = ORDERS_HEADER + "O1,C1,2024-03-01T10:00,placed\nO2,C1\n"
    parsed = parse("orders", text)
    assert parsed.valid["channel"].to_list() == [None]
    assert_rejects(parsed, [(2, "missing_required")])
    assert parsed.rejects["detail"][0] == "order_ts is missing"


def test_text_after_a_closing_quote_is_bad_csv_on_the_fast_path():
    assert unreadable("orders", ORDERS_HEADER + 'O1,C1,2024-03-01T10:00,placed,"w"e"b"\n') == (
        "bad_csv"
    )


def test_text_after_a_closing_quote_is_bad_csv_on_the_slow_path():
    text = ORDERS_HEADER + 'O1,C1,2024-03-01T10:00,placed,"w"e"b"\n\n'
    assert unreadable("orders", text) == "bad_csv"


# --------------------------------------------------------------------------- reject reasons


def test_every_reject_reason_with_its_row_number_and_partition_date():
    text = (
        ORDERS_HEADER
        + "O1,C1,2024-03-01T10:00,placed,web\n"  # 1 valid
        + ",C1,2024-03-01T10:00,placed,web\n"  # 2 missing order_id
        + "O3,C1,2024-03-01,placed,web\n"  # 3 bare date
        + "O4,C1,2024-03-04T10:00,lost,web\n"  # 4 status out of domain
        + "O5,C1,2024-03-05T10:00,placed,WEB\n"  # 5 enums are exact, lower case
        + "O6,C1,2024-03-06T10:00,placed,web,x\n"  # 6 malformed
        + "\n"
        + "O7,C1,2024-03-07T10:00,placed,web\n"  # 7 valid
    )
    parsed = parse("orders", text)
    expected = pl.DataFrame(
        {
            "row_number": [2, 3, 4, 5, 6],
            "reason": [
                "missing_required",
                "bad_timestamp",
                "out_of_domain",
                "out_of_domain",
                "malformed_record",
            ],
            "partition_date": [
                dt.date(2024, 3, 1),
                None,
                dt.date(2024, 3, 4),
                dt.date(2024, 3, 5),
                None,
            ],
        },
        schema={"row_number": pl.Int64, "reason": pl.String, "partition_date": pl.Date},
    )
    assert_frame_equal(parsed.rejects.select("row_number", "reason", "partition_date"), expected)
    assert parsed.rejects["source"].unique().to_list() == ["orders"]
    assert parsed.rejects["file_name"].unique().to_list() == ["f_001"]
    assert parsed.valid["_row_number"].to_list() == [1, 7]


@pytest.mark.parametrize(
    ("source", "header", "row", "reason", "column"),
    [
        # missing_required comes before bad_timestamp (rule order)
        ("orders", ORDERS_HEADER, "O1,,not-a-time,placed,web", "missing_required", "customer_id"),
        # bad_timestamp before out_of_domain
        ("orders", ORDERS_HEADER, "O1,C1,yesterday,lost,web", "bad_timestamp", "order_ts"),
        # out_of_domain: column by column in contract order (status before channel)
        ("orders", ORDERS_HEADER, "O1,C1,2024-03-01T10:00,lost,fax", "out_of_domain", "status"),
        # missing_required in contract order (order_id before status)
        ("orders", ORDERS_HEADER, ",C1,2024-03-01T10:00,,web", "missing_required", "order_id"),
        # bad_number and bad_timestamp are one rule: list_price comes before updated_at
        ("products", PRODUCTS_HEADER, "P1,n,Toys,abc,1.00,never", "bad_number", "list_price"),
        ("products", PRODUCTS_HEADER, "P1,n,Toys,1.00,x,never", "bad_number", "unit_cost"),
        ("products", PRODUCTS_HEADER, "P1,n,Toys,-1.00,x,2024-01-01T00:00", "bad_number", None),
        ("customers", CUSTOMERS_HEADER, "C1,e,zzz,US,bad,bad", "bad_timestamp", "signup_ts"),
        ("customers", CUSTOMERS_HEADER, "C1,e,zzz,US,,2024-01-01 00:00", "out_of_domain", None),
        ("order_items", ITEMS_HEADER, "O1,x,P1,0,1.234", "bad_number", "line_number"),
        ("order_items", ITEMS_HEADER, "O1,0,P1,0,-1", "out_of_domain", "line_number"),
        ("order_items", ITEMS_HEADER, "O1,1,P1,0,-1", "out_of_domain", "quantity"),
        ("order_items", ITEMS_HEADER, "O1,1,,x,1", "missing_required", "product_id"),
        ("order_items", ITEMS_HEADER, "O1,1,P1,2,-0.01", "out_of_domain", "unit_price"),
    ],
)
def test_first_failing_rule_wins(source, header, row, reason, column):
    parsed = parse(source, header + row + "\n")
    assert rejects_of(parsed) == [(1, reason)]
    if column is not None:
        assert parsed.rejects["detail"][0].startswith(column)
    assert parsed.rejects["raw_record"][0] == row
    assert parsed.valid.height == 0


def test_a_reject_row_is_never_a_version_of_its_key():
    # row 2 fails validation, so row 1 is the only version: no duplicate_key
    text = ORDERS_HEADER + "O1,C1,2024-03-01T10:00,placed,web\nO1,C1,2024-03-01T10:00,lost,web\n"
    parsed = parse("orders", text)
    assert parsed.valid["_row_number"].to_list() == [1]
    assert_rejects(parsed, [(2, "out_of_domain")])


# --------------------------------------------------------------------------- versions in a file


def test_duplicate_key_earlier_different_row_rejected_later_wins():
    text = (
        ORDERS_HEADER
        + "O1,C1,2024-03-01T10:00,placed,web\n"  # 1 superseded in the file: duplicate_key
        + "O2,C1,2024-03-01T10:00,placed,web\n"  # 2 collapsed into 4
        + "O1,C1,2024-03-02T10:00,shipped,web\n"  # 3 wins for O1
        + " O2 ,C1,2024-03-01T10:00:00Z,placed,web\n"  # 4 same content as 2: wins, 2 collapsed
    )
    parsed = parse("orders", text)
    expected = valid_frame(
        "orders",
        [
            order("O1", T(2024, 3, 2, 10), "shipped", row=3),
            order("O2", T(2024, 3, 1, 10), row=4),
        ],
    )
    assert_frame_equal(valid_of(parsed), expected)
    assert_rejects(parsed, [(1, "duplicate_key")])
    assert parsed.rejects["partition_date"].to_list() == [dt.date(2024, 3, 1)]
    assert "row 3" in parsed.rejects["detail"][0]
    assert parsed.collapsed == 1


def test_identical_rows_collapse_silently_to_the_last():
    parsed = parse("orders", ORDERS_HEADER + (GOOD_ORDER + "\n") * 3)
    assert parsed.valid["_row_number"].to_list() == [3]
    assert parsed.rejects.height == 0
    assert parsed.collapsed == 2


def test_dimension_key_includes_updated_at():
    text = (
        CUSTOMERS_HEADER
        + "C1,a@x,active,US,,2024-01-01T00:00\n"
        + "C1,a@x,inactive,US,,2024-01-02T00:00\n"
        + "C1,b@x,inactive,US,,2024-01-02T00:00\n"
    )
    parsed = parse("customers", text)
    assert parsed.valid["_row_number"].to_list() == [1, 3]
    assert_rejects(parsed, [(2, "duplicate_key")])


def test_order_items_duplicate_key_is_order_and_line():
    text = ITEMS_HEADER + "O1,1,P1,1,1.00\nO1,2,P1,1,1.00\nO1,1,P2,1,1.00\nO2,1,P1,1,1.00\n"
    parsed = parse("order_items", text)
    assert parsed.valid["_row_number"].to_list() == [2, 3, 4]
    assert_rejects(parsed, [(1, "duplicate_key")])
    assert parsed.rejects["order_ref"].to_list() == ["O1"]


def test_events_first_delivery_wins_within_a_file_without_reject():
    lines = [
        '{"event_id": "E1", "session_id": "S1", "event_type": "page_view",'
        ' "event_ts": "2024-03-01T10:00:00Z"}',
        '{"event_id": "E2", "session_id": "S1", "event_type": "checkout",'
        ' "event_ts": "2024-03-01T10:01:00Z"}',
        '{"event_id": "E1", "session_id": "S9", "event_type": "purchase",'
        ' "event_ts": "2024-03-02T10:00:00Z"}',
        '{"event_id": "E2", "session_id": "S1", "event_type": "checkout",'
        ' "event_ts": "2024-03-01T10:01:00Z"}',
    ]
    parsed = parse("events", "\n".join(lines) + "\n", "events_1.jsonl")
    expected = valid_frame(
        "events",
        [
            {"event_id": "E1", "session_id": "S1", "event_type": "page_view"}
            | {"event_ts": T(2024, 3, 1, 10), "_row_number": 1},
            {"event_id": "E2", "session_id": "S1", "event_type": "checkout"}
            | {"event_ts": T(2024, 3, 1, 10, 1), "_row_number": 2},
        ],
        "events_1.jsonl",
    )
    assert_frame_equal(valid_of(parsed), expected)
    assert parsed.rejects.height == 0
    assert parsed.collapsed == 2


# --------------------------------------------------------------------------- JSON Lines


def payment(**fields) -> str:
    base = {
        "payment_id": "P1",
        "order_id": "O1",
        "amount": "10.00",
        "status": "settled",
        "paid_ts": "2024-03-01T10:00:00Z",
    }
    return json.dumps({k: v for k, v in (base | fields).items() if v is not ...})


def test_jsonl_line_numbers_count_blank_lines_and_numbers_are_read_as_text():
    text = (
        "\n"
        + '{"payment_id": 17, "order_id": 5, "amount": 12.50, "status": "settled",'
        + ' "paid_ts": "2024-03-01T10:00:00Z", "method": "card", "unknown": {"a": [1]}}\r\n'
        + "   \n"
        + "\n"
        + payment(payment_id="P2", amount=3, currency=" USD ", method=None)
        + "\n"
    )
    parsed = parse("payments", text, "payments_1.jsonl")
    base = {"order_id": "O1", "currency": "USD", "status": "settled"}
    expected = valid_frame(
        "payments",
        [
            base
            | {"payment_id": "17", "order_id": "5", "amount": D("12.50"), "method": "card"}
            | {"paid_ts": T(2024, 3, 1, 10), "_row_number": 2},
            base
            | {"payment_id": "P2", "amount": D("3.00"), "method": None}
            | {"paid_ts": T(2024, 3, 1, 10), "_row_number": 5},
        ],
        "payments_1.jsonl",
    )
    assert_frame_equal(valid_of(parsed), expected)
    assert parsed.rejects.height == 0


def test_jsonl_booleans_are_text_objects_and_arrays_are_bad_type():
    text = "\n".join(
        [
            payment(payment_id=True, method=False),  # 1: 'false' is no method
            payment(payment_id=True),  # 2: 'true' is a valid id
            payment(order_id={"id": 1}),  # 3
            payment(amount=[1], paid_ts="x"),  # 4 bad_type before bad_timestamp
            payment(paid_ts=None),  # 5
            payment(amount=None, order_id=[]),  # 6 bad_type before missing_required
        ]
    )
    parsed = parse("payments", text)
    assert_rejects(
        parsed,
        [
            (1, "out_of_domain"),
            (3, "bad_type"),
            (4, "bad_type"),
            (5, "missing_required"),
            (6, "bad_type"),
        ],
    )
    assert parsed.rejects["detail"][1].startswith("order_id")
    assert parsed.rejects["detail"][2].startswith("amount")
    assert parsed.rejects["detail"][4].startswith("order_id")
    assert parsed.valid["payment_id"].to_list() == ["true"]
    assert parsed.valid["_row_number"].to_list() == [2]


def test_jsonl_non_object_lines_are_malformed_record():
    lines = [payment(), "[1, 2]", '"text"', "42", "null", "{not json", payment(payment_id="P2")]
    parsed = parse("payments", "\n".join(lines))
    assert_rejects(parsed, [(n, "malformed_record") for n in (2, 3, 4, 5, 6)])
    assert parsed.rejects["raw_record"].to_list() == lines[1:6]
    assert parsed.rejects["partition_date"].null_count() == 5
    assert parsed.valid["_row_number"].to_list() == [1, 7]


def test_jsonl_money_as_number_and_string():
    lines = [
        payment(payment_id="A", amount="12.5"),
        '{"payment_id": "B", "order_id": "O", "amount": 1e3, "status": "settled",'
        ' "paid_ts": "2024-03-01T00:00"}',
        '{"payment_id": "C", "order_id": "O", "amount": 0.001, "status": "settled",'
        ' "paid_ts": "2024-03-01T00:00"}',
        payment(payment_id="D", amount="0.00"),
        payment(payment_id="E", amount="-5"),
    ]
    parsed = parse("payments", "\n".join(lines))
    assert parsed.valid["amount"].to_list() == [D("12.50")]
    assert rejects_of(parsed) == [
        (2, "bad_number"),
        (3, "bad_number"),
        (4, "out_of_domain"),
        (5, "out_of_domain"),
    ]


def test_jsonl_currency_defaults_to_usd_and_other_currencies_are_out_of_domain():
    lines = [
        payment(payment_id="A"),
        payment(payment_id="B", currency=None),
        payment(payment_id="C", currency="EUR"),
        payment(payment_id="D", currency="usd"),
    ]
    parsed = parse("payments", "\n".join(lines))
    assert parsed.valid["currency"].to_list() == ["USD", "USD"]
    assert rejects_of(parsed) == [(3, "out_of_domain"), (4, "out_of_domain")]
    assert parsed.rejects["detail"][0].startswith("currency")
    assert parsed.rejects["partition_date"].to_list() == [dt.date(2024, 3, 1)] * 2


def test_jsonl_lone_surrogate_escape_is_a_reject_not_a_crash():
    text = payment(payment_id="A") + "\n" + '{"payment_id": "\\ud800"}' + "\n"
    parsed = parse("payments", text)
    assert parsed.valid["_row_number"].to_list() == [1]
    assert parsed.rejects["row_number"].to_list() == [2]


# --------------------------------------------------------------------------- unreadable files


@pytest.mark.parametrize(
    ("source", "data", "reason"),
    [
        ("orders", b"order_id,customer_id\n\xff\xfe", "not_utf8"),
        ("payments", b'{"payment_id": "\xe9"}\n', "not_utf8"),
        ("orders", b"", "empty"),
        ("orders", b"\xef\xbb\xbf", "empty"),
        ("events", b" \r\n\t\n", "empty"),
        ("orders", "order_id,customer_id,status\nO1,C1,placed\n", "missing_column"),
        ("order_items", "order_id,line_number,product_id,quantity\n", "missing_column"),
        ("orders", "order_id,customer_id,order_ts,status,order_id\n", "duplicate_column"),
        ("orders", "order_id,customer_id,order_ts, status,status \n", "duplicate_column"),
        ("orders", '"order_id,customer_id,order_ts,status\n', "bad_csv"),
        ("orders", ORDERS_HEADER + 'O1,C1,2024-03-01T00:00,placed,"web\n', "bad_csv"),
        ("payments", "[1]\nnot json\n\n", "no_json_object"),
        ("events", "order_id,customer_id\nO1,C1\n", "no_json_object"),
    ],
)
def test_unreadable_file_reasons(source, data, reason):
    assert unreadable(source, data) == reason


def test_a_json_object_without_contract_fields_makes_the_file_readable():
    parsed = parse("payments", '{"a": 1}\n')
    assert rejects_of(parsed) == [(1, "missing_required")]


# --------------------------------------------------------------------------- timestamps


def ts(text: str) -> T | None:
    return pl.select(parse_timestamp(pl.lit(text, pl.String))).item()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T10:20", T(2024, 3, 1, 10, 20)),
        ("2024-03-01 10:20", T(2024, 3, 1, 10, 20)),
        ("2024-03-01T10:20:30", T(2024, 3, 1, 10, 20, 30)),
        ("2024-03-01 10:20:30.5", T(2024, 3, 1, 10, 20, 30, 500000)),
        ("2024-03-01T10:20:30.123456", T(2024, 3, 1, 10, 20, 30, 123456)),
        ("2024-03-01T10:20:30.1234567", T(2024, 3, 1, 10, 20, 30, 123456)),
        ("2024-03-01T10:20:30.999999999Z", T(2024, 3, 1, 10, 20, 30, 999999)),
        ("2024-03-01T10:20Z", T(2024, 3, 1, 10, 20)),
        ("2024-03-01T10:20:30Z", T(2024, 3, 1, 10, 20, 30)),
        ("2024-03-01T10:20+02:00", T(2024, 3, 1, 8, 20)),
        ("2024-03-01T10:20:30-05:30", T(2024, 3, 1, 15, 50, 30)),
        ("2024-03-01T10:20:30.25+0130", T(2024, 3, 1, 8, 50, 30, 250000)),
        ("2024-03-01 10:20-0100", T(2024, 3, 1, 11, 20)),
        ("2024-03-01T10:20+00:00", T(2024, 3, 1, 10, 20)),
        ("2024-03-01T10:20-00:00", T(2024, 3, 1, 10, 20)),
        # across a date boundary, both ways, and across a year and a leap day
        ("2024-03-01T01:00+02:00", T(2024, 2, 29, 23, 0)),
        ("2024-02-29T23:30-01:00", T(2024, 3, 1, 0, 30)),
        ("2024-12-31T22:00:00-14:00", T(2025, 1, 1, 12, 0)),
        ("2025-01-01T00:00:00+14:00", T(2024, 12, 31, 10, 0)),
        ("2024-02-29T12:00", T(2024, 2, 29, 12, 0)),
    ],
)
def test_timestamp_spellings(text, expected):
    assert ts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01",
        "2024-02-30T00:00",
        "2023-02-29T00:00",
        "2024-13-01T00:00",
        "2024-03-01T24:00",
        "2024-03-01T10:60",
        "2024-03-01T10:20:61",
        "2024-03-01t10:20",
        "2024-03-01T10:20z",
        "2024-03-01T10:20+25:00",
        "2024-03-01T10:20+05:99",
        "2024-03-01T10:20+2",
        "2024-03-01T10:20+02",
        "2024-03-01T10",
        "2024-3-1T10:20",
        "2024-03-01T1:20",
        "2024-03-01T10:20:3",
        "2024-03-01T10:20.5",
        "2024-03-01T10:20:30.",
        "2024-03-01T10:20:30,5",
        "2024-03-01  10:20",
        "20240301T1020",
        "2024-03-01T10:20 Z",
        "2024-03-01T10:20:30Z+01:00",
        "1709288400",
        "yesterday",
    ],
)
def test_bad_timestamps(text):
    assert ts(text) is None


@pytest.mark.parametrize("text", ["2024-03-01T10:20:60", "2024-03-01T23:59:60Z"])
def test_second_sixty_is_bad_timestamp(text):
    assert ts(text) is None


def test_bad_timestamp_row_in_a_file_and_utc_partition_date():
    text = (
        ORDERS_HEADER
        + "O1,C1,2024-03-01T23:30:00-01:00,placed,web\n"  # 2024-03-02 00:30 UTC
        + "O2,C1,2024-03-01T10:20z,placed,web\n"
        + "O3,C1,2024-03-01,placed,web\n"
    )
    parsed = parse("orders", text)
    assert parsed.valid["order_ts"].to_list() == [T(2024, 3, 2, 0, 30)]
    assert rejects_of(parsed) == [(2, "bad_timestamp"), (3, "bad_timestamp")]
    assert parsed.rejects["partition_date"].to_list() == [None, None]


def test_timestamp_dtype_is_naive_microseconds():
    parsed = parse("orders", ORDERS_HEADER + GOOD_ORDER + "\n")
    assert parsed.valid.schema["order_ts"] == pl.Datetime("us", None)


# --------------------------------------------------------------------------- numbers


def money(text: str) -> Decimal | None:
    return pl.select(parse_money(pl.lit(text, pl.String))).item()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", D("12.00")),
        ("12.5", D("12.50")),
        ("12.50", D("12.50")),
        ("0.01", D("0.01")),
        ("+3.10", D("3.10")),
        ("-1.00", D("-1.00")),
        ("007.10", D("7.10")),
        ("9999999999999999.99", D("9999999999999999.99")),
        ("1234567890123456", D("1234567890123456.00")),
        ("12.345", None),
        ("1e3", None),
        ("1E3", None),
        ("12.", None),
        (".5", None),
        ("1,000.00", None),
        ("12345678901234567", None),
        ("12345678901234567.00", None),
        ("abc", None),
        ("NaN", None),
        ("--1", None),
        ("1 000", None),
    ],
)
def test_money_values(text, expected):
    assert money(text) == expected


@pytest.mark.parametrize(
    ("unit_price", "quantity", "line_number", "reason"),
    [
        ("12.345", "1", "1", "bad_number"),
        ("1e3", "1", "1", "bad_number"),
        ("-1.00", "1", "1", "out_of_domain"),
        ("1234567890123456.99", "1", "1", None),
        ("12345678901234567", "1", "1", "bad_number"),
        ("0", "1", "1", None),
        ("-0.00", "1", "1", None),
        ("1.00", "3.0", "1", "bad_number"),
        ("1.00", "0", "1", "out_of_domain"),
        ("1.00", "-2", "1", "out_of_domain"),
        ("1.00", "+2", "1", "bad_number"),
        ("1.00", "2", "+1", "bad_number"),
        ("1.00", "2", "0", "out_of_domain"),
        ("1.00", "2", "1e1", "bad_number"),
        ("1.00", "2", "007", None),
    ],
)
def test_numbers_in_a_file(unit_price, quantity, line_number, reason):
    parsed = parse("order_items", ITEMS_HEADER + f"O1,{line_number},P1,{quantity},{unit_price}\n")
    if reason is None:
        assert parsed.rejects.height == 0
        row = parsed.valid.row(0, named=True)
        assert row["unit_price"] == D(unit_price)
        assert row["quantity"] == int(quantity)
        assert row["line_number"] == int(line_number)
    else:
        assert rejects_of(parsed) == [(1, reason)]


@pytest.mark.parametrize(
    ("list_price", "unit_cost", "reason"),
    [
        ("-1.00", "1.00", "out_of_domain"),
        ("1.00", "-0.01", "out_of_domain"),
        ("0.00", "0", None),
        ("12.345", "-1", "bad_number"),
    ],
)
def test_product_prices_must_not_be_negative(list_price, unit_cost, reason):
    text = PRODUCTS_HEADER + f"P1,n,Toys,{list_price},{unit_cost},2024-01-01T00:00\n"
    parsed = parse("products", text)
    assert rejects_of(parsed) == ([] if reason is None else [(1, reason)])


# --------------------------------------------------------------------------- fuzzing regressions
# Each found by assets_pkg_tests/lake/test_fuzz_parsers.py or the atheris harness.


def test_regression_lone_cr_inside_an_unquoted_file_ends_the_record_on_both_paths():
    # the columnar reader kept "web\rO2" as one value and shifted every later row number
    text = ORDERS_HEADER + "O1,C1,2024-03-01T10:00,placed,web\rO2\n" + GOOD_ORDER + "\n"
    parsed = parse("orders", text)
    assert parsed.valid.select("order_id", "_row_number").rows() == [("O1", 1), ("O9", 3)]
    assert rejects_of(parsed) == [(2, "missing_required")]


def test_regression_lone_cr_line_ends_throughout_do_not_crash_the_reader():
    text = ORDERS_HEADER.replace("\n", "\r") + (GOOD_ORDER + "\r") * 2
    assert parsed_rows(parse("orders", text)) == [2]  # two identical rows: the last one stays


def parsed_rows(parsed: ParsedFile) -> list[int]:
    return parsed.valid["_row_number"].to_list()


@pytest.mark.parametrize("quoted", [False, True])
def test_regression_a_field_beyond_128_kib_loads_quoted_or_not(quoted):
    # the csv module's default field limit quarantined the quoted file as bad_csv
    name = "n" * 200_000
    cell = f'"{name}"' if quoted else name
    parsed = parse("products", PRODUCTS_HEADER + f"P1,{cell},Toys,1.00,0.50,2024-01-01T00:00\n")
    assert parsed.valid["name"].to_list() == [name]


@pytest.mark.parametrize(
    "stamp",
    [
        "9999-12-31T23:59:59-00:01",
        "9999-12-31T23:30:00-01:00",
        "0001-01-01T00:00+00:01",
        "0001-01-01T00:59:59+01:00",
        "0000-12-31T23:00",
    ],
)
def test_regression_an_instant_outside_years_1_to_9999_is_bad_timestamp(stamp):
    # such a value has no calendar date: partitioning it crashed the whole ingest pass
    parsed = parse("orders", ORDERS_HEADER + f"O1,C1,{stamp},placed,web\n")
    assert rejects_of(parsed) == [(1, "bad_timestamp")]


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("9999-12-31T23:59:59", T(9999, 12, 31, 23, 59, 59)),
        ("9999-12-31T23:59:59.9999999Z", T(9999, 12, 31, 23, 59, 59, 999999)),
        ("9999-12-31T23:59:59+14:00", T(9999, 12, 31, 9, 59, 59)),
        ("0001-01-01T00:00", T(1, 1, 1)),
        ("0001-01-01T00:00-12:00", T(1, 1, 1, 12)),
        ("1970-01-01T00:00:00Z", T(1970, 1, 1)),
    ],
)
def test_instants_at_the_edges_of_the_calendar_still_load(stamp, expected):
    parsed = parse("orders", ORDERS_HEADER + f"O1,C1,{stamp},placed,web\n")
    assert parsed.valid["order_ts"].to_list() == [expected]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_regression_nan_and_infinity_are_not_json(token):
    # Python's json accepted them, and an id NaN loaded as the text "nan"
    text = payment(payment_id="A") + "\n" + payment().replace('"P1"', token) + "\n"
    parsed = parse("payments", text)
    assert rejects_of(parsed) == [(2, "malformed_record")]


def test_regression_a_json_object_naming_a_field_twice_is_malformed():
    # the last copy silently won; which one a producer meant is unknowable
    line = payment()[:-1] + ', "payment_id": "P2"}'
    parsed = parse("payments", payment(payment_id="A") + "\n" + line + "\n")
    assert rejects_of(parsed) == [(2, "malformed_record")]


def test_regression_integers_with_leading_zeros_beyond_18_digits_load():
    parsed = parse("order_items", ITEMS_HEADER + "O1,0000000000000000000001,P1,2,1.00\n")
    assert parsed.valid["line_number"].to_list() == [1]


@pytest.mark.parametrize("value", ["9223372036854775808", "-9223372036854775809", "1" + "0" * 30])
def test_integers_beyond_64_bits_are_bad_number(value):
    parsed = parse("order_items", ITEMS_HEADER + f"O1,1,P1,{value},1.00\n")
    assert rejects_of(parsed) == [(1, "bad_number")]


@pytest.mark.parametrize("digits", ["١٢", "１２"])
def test_digits_of_other_scripts_are_bad_number(digits):
    parsed = parse("order_items", ITEMS_HEADER + f"O1,1,P1,{digits},1.00\n")
    assert rejects_of(parsed) == [(1, "bad_number")]


def test_regression_blank_lines_before_the_header_are_skipped():
    # the first record was taken as the header, so the file was quarantined missing_column
    parsed = parse("orders", "\r\n  \n,,\n" + ORDERS_HEADER + GOOD_ORDER + "\n")
    assert parsed.valid["_row_number"].to_list() == [1]


def test_regression_a_surplus_empty_field_is_malformed_on_the_fast_path_too():
    # the columnar reader dropped a trailing empty field beyond the header's width
    parsed = parse("orders", ORDERS_HEADER + GOOD_ORDER + ",")  # last line, no line end
    assert rejects_of(parsed) == [(1, "malformed_record")]
    assert parsed.valid.height == 0


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_a_surplus_empty_field_before_a_line_end_is_malformed_too(end: str):
    # only the last line is looked at for it: elsewhere the columnar reader refuses the file
    # and the strict reader reads it, which these rows pin down
    text = (
        ORDERS_HEADER.replace("\n", end) + GOOD_ORDER + "," + end + GOOD_ORDER.replace("O9,", "O8,")
    )
    parsed = parse("orders", text + end)
    assert rejects_of(parsed) == [(1, "malformed_record")]
    assert parsed.valid["_row_number"].to_list() == [2]
