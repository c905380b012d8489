-- description: ERROR and CRITICAL records per equal time bucket over the window (the histogram above `logpipe query errors`).
-- param since: time = 1h -- start of the window (inclusive)
-- param until: time = now -- end of the window (exclusive)
-- param service: string = null -- only records of this service (null: every service)
-- param buckets: int = 40 -- number of equal buckets the window is cut into
-- columns: bucket, bucket_start, count
WITH bounds AS (
    SELECT epoch_us($since) AS lo, epoch_us($until) - epoch_us($since) AS span,
           greatest($buckets, 1) AS n
),
hits AS (
    SELECT epoch_us(ts) AS us
    FROM logs
    WHERE level IN ('ERROR', 'CRITICAL')
      AND ts >= $since AND ts < $until
      AND day BETWEEN CAST($since AS DATE) AND CAST($until AS DATE)
      AND ($service IS NULL OR service = $service)
),
counts AS (
    -- integer arithmetic: bucket = floor((us - lo) * n / span), exact at the edges
    SELECT CAST((CAST(us - lo AS HUGEINT) * n) // span AS BIGINT) AS bucket, count(*) AS count
    FROM hits, bounds
    GROUP BY 1
)
SELECT r.bucket,
       make_timestamp(CAST(lo + (CAST(span AS HUGEINT) * r.bucket) // n AS BIGINT))::TIMESTAMPTZ AS bucket_start,
       coalesce(c.count, 0) AS count
FROM bounds, range(n) AS r(bucket)
LEFT JOIN counts c ON c.bucket = r.bucket
ORDER BY r.bucket
