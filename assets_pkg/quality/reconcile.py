"""Cross-layer reconciliation: what a step is about to publish against the layer below.

Each statement yields (day, measure, expected, actual) for the days ``$start..$end``;
``_candidate`` is the step's rows before publication, ``_stg_*`` the staging rows it read.
"""

from __future__ import annotations

_SOLD = "status IN ('placed', 'shipped', 'delivered') AND item_count > 0"

RECONCILIATION: dict[str, str] = {
    "warehouse.fct_order_items": """
WITH s AS (
    SELECT order_date AS d, count(*) AS n, sum(quantity * unit_price) AS money
    FROM _stg_items WHERE order_date BETWEEN $start AND $end GROUP BY 1
), c AS (
    SELECT order_date AS d, count(*) AS n, sum(line_revenue) AS money
    FROM _candidate GROUP BY 1
)
SELECT d, 'rows from stg_order_items', s.n, c.n FROM s FULL JOIN c USING (d)
UNION ALL
SELECT d, 'revenue from stg_order_items', s.money, c.money FROM s FULL JOIN c USING (d)
""",
    "warehouse.fct_orders": """
WITH s AS (
    SELECT order_date AS d, count(*) AS n FROM _stg_orders
    WHERE order_date BETWEEN $start AND $end GROUP BY 1
), i AS (
    SELECT order_date AS d, sum(line_revenue) AS money FROM warehouse.fct_order_items
    WHERE order_date BETWEEN $start AND $end GROUP BY 1
), c AS (
    SELECT order_date AS d, count(*) AS n, sum(revenue) AS money
    FROM _candidate GROUP BY 1
)
SELECT d, 'rows from stg_orders', s.n, c.n FROM s FULL JOIN c USING (d)
UNION ALL
SELECT d, 'revenue from fct_order_items', i.money, coalesce(c.money, 0)
FROM i LEFT JOIN c USING (d)
""",
    "warehouse.fct_payments": """
WITH s AS (
    SELECT paid_date AS d, count(*) AS n, sum(amount) AS money FROM _stg_payments
    WHERE paid_date BETWEEN $start AND $end GROUP BY 1
), c AS (SELECT paid_date AS d, count(*) AS n, sum(amount) AS money FROM _candidate GROUP BY 1)
SELECT d, 'rows from stg_payments', s.n, c.n FROM s FULL JOIN c USING (d)
UNION ALL
SELECT d, 'amount from stg_payments', s.money, c.money FROM s FULL JOIN c USING (d)
""",
    "warehouse.fct_sessions": """
WITH s AS (
    SELECT event_date AS d, count(*) AS n FROM _stg_events
    WHERE event_date BETWEEN $start AND $end GROUP BY 1
), c AS (SELECT session_date AS d, sum(event_count) AS n FROM _candidate GROUP BY 1)
SELECT d, 'events from stg_events', s.n, c.n FROM s FULL JOIN c USING (d)
""",
    "marts.daily_sales": f"""
WITH o AS (
    SELECT order_date AS d, count(*) AS n, sum(revenue) AS money FROM warehouse.fct_orders
    WHERE order_date BETWEEN $start AND $end AND {_SOLD} GROUP BY 1
), c AS (SELECT order_date AS d, sum(order_count) AS n, sum(revenue) AS money
         FROM _candidate GROUP BY 1)
SELECT d, 'orders from fct_orders', o.n, c.n FROM o FULL JOIN c USING (d)
UNION ALL
SELECT d, 'revenue from fct_orders', o.money, c.money FROM o FULL JOIN c USING (d)
""",
    "marts.daily_sales_by_category": f"""
WITH i AS (
    SELECT i.order_date AS d, sum(i.line_revenue) AS money
    FROM warehouse.fct_order_items i JOIN warehouse.fct_orders o USING (order_id)
    WHERE i.order_date BETWEEN $start AND $end AND o.{_SOLD} GROUP BY 1
), c AS (SELECT date AS d, sum(total_sales) AS money FROM _candidate GROUP BY 1)
SELECT d, 'sales from fct_order_items', i.money, c.money FROM i FULL JOIN c USING (d)
""",
    "marts.daily_payments": """
WITH p AS (
    SELECT paid_date AS d, count(*) AS n,
           coalesce(sum(amount) FILTER (WHERE status = 'settled'), 0) AS settled
    FROM warehouse.fct_payments WHERE paid_date BETWEEN $start AND $end GROUP BY 1
), c AS (SELECT paid_date AS d, sum(payment_count) AS n, sum(settled_amount) AS settled
         FROM _candidate GROUP BY 1),
-- the orders settled that day: does everything settled for each match its revenue?
settled AS (
    SELECT paid_date AS d, order_id FROM warehouse.fct_payments
    WHERE paid_date BETWEEN $start AND $end AND status = 'settled'
    GROUP BY ALL
), totals AS (
    SELECT order_id, sum(amount) FILTER (WHERE status = 'settled') AS amount
    FROM warehouse.fct_payments WHERE order_id IN (SELECT order_id FROM settled)
    GROUP BY 1
), mismatch AS (
    SELECT s.d,
           avg(CASE WHEN o.revenue IS DISTINCT FROM t.amount THEN 1.0 ELSE 0.0 END) AS share
    FROM settled s JOIN totals t USING (order_id) LEFT JOIN warehouse.fct_orders o USING (order_id)
    GROUP BY 1
)
SELECT d, 'payments from fct_payments', p.n, c.n FROM p FULL JOIN c USING (d)
UNION ALL
SELECT d, 'settled amount from fct_payments', p.settled, c.settled FROM p FULL JOIN c USING (d)
UNION ALL
SELECT d, 'payment_mismatch_share', NULL, CAST(share AS DECIMAL(18,6)) FROM mismatch
""",
    "marts.daily_funnel": """
WITH s AS (
    SELECT session_date AS d, count(*) AS n FROM warehouse.fct_sessions
    WHERE session_date BETWEEN $start AND $end GROUP BY 1
), c AS (SELECT date AS d, sum(sessions) AS n FROM _candidate GROUP BY 1)
SELECT d, 'sessions from fct_sessions', s.n, c.n FROM s FULL JOIN c USING (d)
""",
}
