-- description: Lines that could not become records, per reason and source, most frequent first.
-- param since: time = 24h -- start of the window (inclusive, by time received)
-- param until: time = now -- end of the window (exclusive)
-- columns: reason, source, count, first_seen, last_seen, sample_detail
SELECT reason, source, count(*) AS count, min(received_at) AS first_seen,
       max(received_at) AS last_seen, arg_max(detail, received_at) AS sample_detail
FROM dead_letters
WHERE received_at >= $since AND received_at < $until
  AND day BETWEEN CAST($since AS DATE) AND CAST($until AS DATE)
GROUP BY reason, source
ORDER BY count DESC, reason, source
