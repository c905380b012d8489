"""Level-based retention: `logpipe retention plan|apply|export`.

    policy   retention/policy.yaml -> Policy (strict: unknown keys are errors naming the field path)
    window   the one rule for "old enough": cutoffs aligned to UTC midnight, clock-skew margin
    archive  day partitions of the Parquet archive
    es       per-level daily indices (whole-index delete) and mixed indices (`_delete_by_query`)
    loki     `POST /loki/api/v1/delete` requests, pending ones listed first
    run      plan/apply over the backends: actions, audit lines, the run lock
    export   server-side equivalents: ILM + index templates, ISM, Loki `retention_stream`

Retention reads what the sinks wrote; like the query side it never imports the shipping
pipeline (sources, parse, enrich, pipeline). It reuses `logpipe.engine` to talk to
Elasticsearch/OpenSearch, the archive layout helpers, and the Loki sink's URL parser so one
`loki://` URL means the same thing to the agent and to retention.
"""
