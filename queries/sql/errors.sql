-- description: ERROR and CRITICAL records grouped by message key, most frequent first.
-- param since: time = 1h -- start of the window (inclusive)
-- param until: time = now -- end of the window (exclusive)
-- param service: string = null -- only records of this service (null: every service)
-- columns: message_key, count, first_seen, last_seen, sample_message, top_endpoints, top_services
WITH hits AS (
    SELECT ts, coalesce(message_key, message, '') AS message_key, message, endpoint, service
    FROM logs
    WHERE level IN ('ERROR', 'CRITICAL')
      AND ts >= $since AND ts < $until
      AND day BETWEEN CAST($since AS DATE) AND CAST($until AS DATE)
      AND ($service IS NULL OR service = $service)
),
groups AS (
    SELECT message_key, count(*) AS count, min(ts) AS first_seen, max(ts) AS last_seen,
           arg_max(message, ts) AS sample_message
    FROM hits
    GROUP BY message_key
),
-- "top" = the three most frequent values, ties broken alphabetically, written "value (count)"
endpoint_counts AS (
    SELECT message_key, endpoint AS value, count(*) AS n,
           row_number() OVER (PARTITION BY message_key ORDER BY count(*) DESC, endpoint) AS rank
    FROM hits WHERE endpoint IS NOT NULL GROUP BY message_key, endpoint
),
service_counts AS (
    SELECT message_key, service AS value, count(*) AS n,
           row_number() OVER (PARTITION BY message_key ORDER BY count(*) DESC, service) AS rank
    FROM hits WHERE service IS NOT NULL GROUP BY message_key, service
),
top_endpoints AS (
    SELECT message_key, string_agg(value || ' (' || n || ')', ', ' ORDER BY rank) AS top
    FROM endpoint_counts WHERE rank <= 3 GROUP BY message_key
),
top_services AS (
    SELECT message_key, string_agg(value || ' (' || n || ')', ', ' ORDER BY rank) AS top
    FROM service_counts WHERE rank <= 3 GROUP BY message_key
)
SELECT g.message_key, g.count, g.first_seen, g.last_seen, g.sample_message,
       coalesce(e.top, '') AS top_endpoints, coalesce(s.top, '') AS top_services
FROM groups g
LEFT JOIN top_endpoints e USING (message_key)
LEFT JOIN top_services s USING (message_key)
ORDER BY g.count DESC, g.message_key
