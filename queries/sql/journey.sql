-- description: One user's (or session's, or request's) records in time order, grouped by session and request. Records that carry only request_id belong to their request's user: context is joined on request_id across the whole archive.
-- param user: string = null -- user_id to follow
-- param session: string = null -- session_id to follow
-- param request: string = null -- request_id to follow
-- param since: time = 7d -- start of the window (inclusive)
-- param until: time = now -- end of the window (exclusive)
-- columns: ts, session_id, request_id, user_id, level, service, method, endpoint, status, duration_ms, message
WITH matched AS (
    -- every request that belongs to the subject, with the context seen on any of its records
    SELECT request_id,
           max(user_id) AS ctx_user,
           max(session_id) AS ctx_session
    FROM logs
    WHERE request_id IS NOT NULL
      AND (user_id = $user OR session_id = $session OR request_id = $request)
    GROUP BY request_id
),
hits AS (
    SELECT w.ts, coalesce(w.session_id, m.ctx_session) AS session_id, w.request_id,
           coalesce(w.user_id, m.ctx_user) AS user_id, w.level, w.service, w.method,
           w.endpoint, w.status, w.duration_ms, w.message, w.event_id
    FROM logs w
    LEFT JOIN matched m ON w.request_id = m.request_id
    WHERE w.ts >= $since AND w.ts < $until
      AND w.day BETWEEN CAST($since AS DATE) AND CAST($until AS DATE)
      AND (m.request_id IS NOT NULL OR w.user_id = $user OR w.session_id = $session)
)
SELECT ts, session_id, request_id, user_id, level, service, method, endpoint, status,
       duration_ms, message
FROM hits
ORDER BY min(ts) OVER (PARTITION BY session_id), session_id NULLS LAST,
         min(ts) OVER (PARTITION BY session_id, request_id), request_id NULLS LAST,
         ts, event_id
-- On the archive, logpipe answers this built-in file in three narrow reads, not the join of the whole
-- table above (logpipe/read/archive_journey.py; tests/read/test_archive_journey.py checks that both give
-- the same rows). A journey.sql of your own (--queries, LOGPIPE_QUERIES) runs as written.
