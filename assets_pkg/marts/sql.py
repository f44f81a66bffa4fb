"""Mart SQL over the warehouse facts, one statement per mart, for a range of days.

Money sums stay DECIMAL; ratios are computed in exact integer arithmetic (cents and
counts as HUGEINT) and rounded half away from zero by ``exact_div``, because DuckDB
computes DECIMAL / DECIMAL as DOUBLE.
"""

from assets_pkg.contracts import TABLES

# round(n / d) half away from zero, for integers
EXACT_DIV_MACRO = """
CREATE OR REPLACE TEMP MACRO exact_div(n, d) AS
    CASE WHEN d = 0 OR d IS NULL OR n IS NULL THEN NULL
         ELSE sign(n) * sign(d) * ((2 * abs(n) + abs(d)) // (2 * abs(d))) END
"""

# DECIMAL(18,2) -> integer cents, exactly
_CENTS = "CAST(({x}) * 100 AS HUGEINT)"

SALE_FILTER = "o.status IN ('placed', 'shipped', 'delivered') AND o.item_count > 0"

DAILY_SALES_DDL = TABLES["marts.daily_sales"].ddl()

DAILY_SALES_SELECT = f"""
WITH d AS (
    SELECT o.order_date,
           CAST(sum(o.revenue) AS DECIMAL(18,2)) AS revenue,
           CAST(sum(o.cost) AS DECIMAL(18,2)) AS cost,
           count(*) AS order_count
    FROM warehouse.fct_orders o
    WHERE o.order_date BETWEEN ? AND ? AND {SALE_FILTER}
    GROUP BY o.order_date
)
SELECT order_date, revenue, cost,
       CAST(revenue - cost AS DECIMAL(18,2)) AS gross_profit,
       -- a margin beyond DECIMAL(9,4) (cost 100000x revenue) is NULL rather than a failed day
       TRY_CAST(exact_div({_CENTS.format(x="revenue - cost")} * 10000,
                          {_CENTS.format(x="revenue")}) * 0.0001 AS DECIMAL(9,4))
           AS profit_margin,
       order_count
FROM d
ORDER BY order_date
"""

DAILY_SALES_BY_CATEGORY_DDL = TABLES["marts.daily_sales_by_category"].ddl()

DAILY_SALES_BY_CATEGORY_SELECT = f"""
WITH d AS (
    SELECT i.order_date AS date,
           i.product_category,
           CAST(sum(i.line_revenue) AS DECIMAL(18,2)) AS total_sales,
           count(DISTINCT i.order_id) AS order_count
    FROM warehouse.fct_order_items i
    JOIN warehouse.fct_orders o
      ON o.order_id = i.order_id AND o.order_date = i.order_date
    WHERE i.order_date BETWEEN ? AND ? AND {SALE_FILTER}
    GROUP BY i.order_date, i.product_category
)
SELECT date, product_category, total_sales, order_count,
       CAST(exact_div({_CENTS.format(x="total_sales")}, order_count) * 0.01 AS DECIMAL(18,2))
           AS avg_order_value
FROM d
ORDER BY date, product_category NULLS LAST
"""

DAILY_PAYMENTS_DDL = TABLES["marts.daily_payments"].ddl()

DAILY_PAYMENTS_SELECT = """
SELECT paid_date, method,
       CAST(coalesce(sum(amount) FILTER (WHERE status = 'settled'), 0) AS DECIMAL(18,2))
           AS settled_amount,
       CAST(coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0) AS DECIMAL(18,2))
           AS refunded_amount,
       count(*) AS payment_count
FROM warehouse.fct_payments
WHERE paid_date BETWEEN ? AND ?
GROUP BY paid_date, method
ORDER BY paid_date, method NULLS LAST
"""

DAILY_FUNNEL_DDL = TABLES["marts.daily_funnel"].ddl()

DAILY_FUNNEL_SELECT = """
WITH d AS (
    SELECT session_date AS date,
           count(*) AS sessions,
           count(*) FILTER (WHERE product_views > 0) AS product_views,
           count(*) FILTER (WHERE add_to_cart > 0) AS add_to_cart,
           count(*) FILTER (WHERE checkouts > 0) AS checkouts,
           count(*) FILTER (WHERE purchases > 0) AS purchases
    FROM warehouse.fct_sessions
    WHERE session_date BETWEEN ? AND ?
    GROUP BY session_date
)
SELECT date, sessions, product_views, add_to_cart, checkouts, purchases,
       CAST(exact_div(CAST(purchases AS HUGEINT) * 10000, sessions) * 0.0001 AS DECIMAL(9,4))
           AS conversion_rate
FROM d
ORDER BY date
"""
