"""Warehouse SQL: the set-based statements that fill the tables (DDL comes from the contracts).

Statements read registered Arrow relations (``_stg*``) or warehouse tables and take the
partition range as bound parameters (``?``); none is built from values.
"""

from assets_pkg.contracts import TABLES

DIM_CUSTOMER_DDL = TABLES["warehouse.dim_customer"].ddl()

DIM_PRODUCT_DDL = TABLES["warehouse.dim_product"].ddl()

# SCD type 2: a snapshot opens a version only when an attribute differs (NULL-safe) from
# the snapshot just before it; keys hash (id, valid_from), so the same data gives the same
# keys on every run.
_SCD2 = """
WITH ordered AS (
    SELECT *,
           row_number() OVER w AS _n,
           {changed} AS _changed
    FROM _stg
    WINDOW w AS (PARTITION BY {id} ORDER BY updated_at)
), kept AS (
    SELECT * FROM ordered WHERE _n = 1 OR _changed
)
SELECT CAST(md5_number_lower({id} || '|' || strftime(updated_at, '%Y-%m-%dT%H:%M:%S.%f')) >> 1
            AS BIGINT) AS {key},
       {id}, {attrs},
       updated_at AS valid_from,
       lead(updated_at) OVER (PARTITION BY {id} ORDER BY updated_at) AS valid_to,
       lead(updated_at) OVER (PARTITION BY {id} ORDER BY updated_at) IS NULL AS is_current
FROM kept
ORDER BY {id}, valid_from
"""


def _scd2(id_col: str, key_col: str, attrs: list[str]) -> str:
    changed = " OR ".join(f"{a} IS DISTINCT FROM lag({a}) OVER w" for a in attrs)
    return _SCD2.format(id=id_col, key=key_col, attrs=", ".join(attrs), changed=changed)


DIM_CUSTOMER_SELECT = _scd2(
    "customer_id", "customer_key", ["email", "status", "country", "signup_ts"]
)
DIM_PRODUCT_SELECT = _scd2(
    "product_id", "product_key", ["name", "category", "list_price", "unit_cost"]
)

# The first day whose point-in-time product lookup may differ between the dimension as it
# was (_before) and as it is now: the earliest valid_from of a version that appeared,
# vanished or changed the columns the facts use. When a product's first version changes,
# orders older than every version (which take the first) change too: day 0001-01-01.
DIM_PRODUCT_CHANGED_FROM = """
WITH old AS (SELECT product_id, valid_from, category, unit_cost FROM _before),
new AS (SELECT product_id, valid_from, category, unit_cost FROM warehouse.dim_product),
changed AS (
    (SELECT * FROM old EXCEPT SELECT * FROM new)
    UNION ALL
    (SELECT * FROM new EXCEPT SELECT * FROM old)
),
firsts AS (
    SELECT product_id, min(valid_from) AS first_from
    FROM (SELECT product_id, valid_from FROM old UNION ALL SELECT product_id, valid_from FROM new)
    GROUP BY product_id
)
SELECT min(CASE WHEN c.valid_from <= f.first_from THEN DATE '0001-01-01'
                ELSE CAST(c.valid_from AS DATE) END)
FROM changed c JOIN firsts f USING (product_id)
"""

FCT_ORDER_ITEMS_DDL = TABLES["warehouse.fct_order_items"].ddl()

# Point in time: the product version valid at order_ts ([valid_from, valid_to)); an
# order older than the product's first version takes the first version. A product's
# versions tile time (each valid_to is the next valid_from, ``_SCD2``), so the range join
# picks exactly the version an ASOF join picks: as a hash join on product_id it is 2.1x
# cheaper than ASOF's sort of every line (a month of 10M items: 0.23 s, not 0.49 s).
FCT_ORDER_ITEMS_SELECT = """
WITH lines AS (
    SELECT i.order_id, i.line_number, i.product_id, i.order_date, i.quantity, i.unit_price,
           o.order_ts
    FROM _stg_items i
    LEFT JOIN _stg_orders o USING (order_id)
), first_version AS (
    SELECT product_id, category, unit_cost
    FROM warehouse.dim_product
    QUALIFY row_number() OVER (PARTITION BY product_id ORDER BY valid_from) = 1
), matched AS (
    SELECT l.*, p.product_key, p.category AS pit_category, p.unit_cost AS pit_unit_cost
    FROM lines l
    LEFT JOIN warehouse.dim_product p
        ON l.product_id = p.product_id AND l.order_ts >= p.valid_from
       AND (p.valid_to IS NULL OR l.order_ts < p.valid_to)
)
SELECT m.order_id, m.line_number, m.product_id,
       CASE WHEN m.product_key IS NULL THEN f.category ELSE m.pit_category END
           AS product_category,
       m.order_date, m.quantity, m.unit_price,
       CAST(m.quantity * m.unit_price AS DECIMAL(18,2)) AS line_revenue,
       CAST(m.quantity * CASE WHEN m.product_key IS NULL THEN f.unit_cost
                              ELSE m.pit_unit_cost END AS DECIMAL(18,2)) AS line_cost
FROM matched m
LEFT JOIN first_version f USING (product_id)
ORDER BY m.order_date, m.order_id, m.line_number
"""

FCT_ORDERS_DDL = TABLES["warehouse.fct_orders"].ddl()

FCT_ORDERS_SELECT = """
WITH lines AS (
    SELECT order_id,
           count(*) AS item_count,
           CAST(sum(line_revenue) AS DECIMAL(18,2)) AS revenue,
           CAST(sum(line_cost) AS DECIMAL(18,2)) AS cost
    FROM warehouse.fct_order_items
    WHERE order_date BETWEEN ? AND ?
    GROUP BY order_id
)
SELECT o.order_id, o.customer_id, o.order_date, o.order_ts, o.status, o.channel,
       coalesce(l.item_count, 0) AS item_count,
       coalesce(l.revenue, CAST(0 AS DECIMAL(18,2))) AS revenue,
       CASE WHEN l.order_id IS NULL THEN CAST(0 AS DECIMAL(18,2)) ELSE l.cost END AS cost
FROM _stg_orders o
LEFT JOIN lines l USING (order_id)
ORDER BY o.order_date, o.order_id
"""

FCT_PAYMENTS_DDL = TABLES["warehouse.fct_payments"].ddl()

FCT_PAYMENTS_SELECT = """
SELECT payment_id, order_id, paid_date, paid_ts, amount, currency, method, status
FROM _stg_payments
ORDER BY paid_date, payment_id
"""

FCT_SESSIONS_DDL = TABLES["warehouse.fct_sessions"].ddl()

FCT_SESSIONS_SELECT = """
SELECT session_id,
       first(user_id ORDER BY event_ts, event_id) FILTER (WHERE user_id IS NOT NULL) AS user_id,
       event_date AS session_date,
       min(event_ts) AS session_start,
       max(event_ts) AS session_end,
       count(*) AS event_count,
       count(*) FILTER (WHERE event_type = 'product_view') AS product_views,
       count(*) FILTER (WHERE event_type = 'add_to_cart') AS add_to_cart,
       count(*) FILTER (WHERE event_type = 'checkout') AS checkouts,
       count(*) FILTER (WHERE event_type = 'purchase') AS purchases
FROM _stg_events
GROUP BY session_id, event_date
ORDER BY session_date, session_id
"""
