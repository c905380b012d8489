-- description: ERROR and CRITICAL records grouped by message key, most frequent first, with their endpoints (from the request's access line when the error line has none) and a sample stack trace.
-- param since: time = 1h -- start of the window (inclusive)
-- param until: time = now -- end of the window (exclusive)
-- param service: string = null -- only records of this service (null: every service)
-- columns: message_key, count, first_seen, last_seen, sample_message, top_endpoints, top_services, sample_error
WITH matched AS (
    SELECT ts, event_id, coalesce(message_key, message, '') AS message_key, message, endpoint, service,
           request_id, error
    FROM logs
    WHERE level IN ('ERROR', 'CRITICAL')
      AND ts >= $since AND ts < $until
      AND day BETWEEN CAST($since AS DATE) AND CAST($until AS DATE)
      AND ($service IS NULL OR service = $service)
),
-- An error line often has only request_id; its request's access line has the endpoint. The
-- access line is the request's last record (ts, then event_id) with an endpoint, looked for
-- within a day either side of the window (requests last seconds; the bound keeps the scan small).
-- The latest such record is found from `since` on when there is one there (it is later than
-- any before `since`): that part of the day either side is the window and the day after it,
-- which the parts' ts statistics narrow to the window itself at the archive's end. Only the
-- requests without one there are looked for in the day before (usually none: no scan).
wanted AS (
    SELECT DISTINCT request_id FROM matched WHERE endpoint IS NULL AND request_id IS NOT NULL
),
access_late AS (
    SELECT request_id, arg_max(endpoint, (ts, event_id)) AS endpoint
    FROM logs
    WHERE endpoint IS NOT NULL
      AND request_id IN (SELECT request_id FROM wanted)
      AND ts >= $since AND ts < $until + INTERVAL 1 DAY
      AND day BETWEEN CAST($since AS DATE) AND CAST($until AS DATE) + 1
    GROUP BY request_id
),
access_early AS (
    SELECT request_id, arg_max(endpoint, (ts, event_id)) AS endpoint
    FROM logs
    WHERE endpoint IS NOT NULL
      AND request_id IN (SELECT request_id FROM wanted EXCEPT SELECT request_id FROM access_late)
      AND ts >= $since - INTERVAL 1 DAY AND ts < $since
      AND day BETWEEN CAST($since AS DATE) - 1 AND CAST($since AS DATE)
    GROUP BY request_id
),
access AS (
    SELECT request_id, endpoint FROM access_late
    UNION ALL
    SELECT request_id, endpoint FROM access_early
),
hits AS (
    SELECT m.ts, m.event_id, m.message_key, m.message, coalesce(m.endpoint, a.endpoint) AS endpoint,
           m.service, m.error
    FROM matched m LEFT JOIN access a ON m.endpoint IS NULL AND a.request_id = m.request_id
),
groups AS (
    SELECT message_key, count(*) AS count, min(ts) AS first_seen, max(ts) AS last_seen,
           arg_max(message, ts) AS sample_message,
           -- the latest stack trace of the group (ts, then event_id, as the engine sorts)
           arg_max(error, (ts, event_id)) FILTER (WHERE error IS NOT NULL) AS sample_error
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
       coalesce(e.top, '') AS top_endpoints, coalesce(s.top, '') AS top_services, g.sample_error
FROM groups g
LEFT JOIN top_endpoints e USING (message_key)
LEFT JOIN top_services s USING (message_key)
ORDER BY g.count DESC, g.message_key
