-- description: Latency per endpoint template (or service): count, p50, p95, p99, max and error rate; only groups whose p95 passes the threshold, slowest first.
-- param since: time = 24h -- start of the window (inclusive)
-- param until: time = now -- end of the window (exclusive)
-- param threshold: duration = 1000ms -- list groups whose p95 is above this (250ms, 1.5s; a bare number is ms)
-- param by: choice(endpoint|service) = endpoint -- what a row is: an endpoint template or a service
-- param service: string = null -- only records of this service (null: every service)
-- columns: key, count, p50_ms, p95_ms, p99_ms, max_ms, error_rate
WITH timed AS (
    SELECT CASE WHEN $by = 'service' THEN service ELSE endpoint END AS key, duration_ms, status
    FROM logs
    WHERE duration_ms IS NOT NULL
      AND ts >= $since AND ts < $until
      AND day BETWEEN CAST($since AS DATE) AND CAST($until AS DATE)
      AND ($service IS NULL OR service = $service)
),
stats AS (
    SELECT key, count(*) AS count,
           quantile_cont(duration_ms, 0.50) AS p50_ms,
           quantile_cont(duration_ms, 0.95) AS p95_ms,
           quantile_cont(duration_ms, 0.99) AS p99_ms,
           max(duration_ms) AS max_ms,
           -- share of the group's requests that answered 5xx
           avg(CASE WHEN status >= 500 THEN 1.0 ELSE 0.0 END) AS error_rate
    FROM timed
    WHERE key IS NOT NULL
    GROUP BY key
)
SELECT key, count, p50_ms, p95_ms, p99_ms, max_ms, error_rate
FROM stats
WHERE p95_ms > $threshold
ORDER BY p95_ms DESC, key
