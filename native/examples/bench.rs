//! `cargo run --release --example bench -- FILE`: normalise a python-json-logger file in-process
//! (for profiling the native normaliser with perf or callgrind).
use _native::context::ContextMap;
use _native::framing::frame;
use _native::normalise::{BatchInfo, Combine, FieldSpec, Levels, Normaliser, Scheme, Spec};

fn f(paths: &[&str]) -> FieldSpec {
    FieldSpec { paths: paths.iter().map(|p| vec![p.to_string()]).collect(), combine: Combine::First, scales: vec![] }
}

fn main() {
    let path = std::env::args().nth(1).expect("FILE");
    let data = std::fs::read(path).unwrap();
    let fields = vec![
        f(&["timestamp", "asctime", "time", "@timestamp", "ts", "created"]),
        f(&["level", "levelname", "severity", "log.level"]),
        f(&["message", "msg"]),
        f(&["logger", "name", "logger_name"]),
        f(&["service", "service_name", "app"]),
        f(&["host", "hostname"]),
        f(&["request_id", "requestId", "req_id"]),
        f(&["user_id", "userId"]),
        f(&["session_id", "sessionId"]),
        f(&["trace_id", "traceId", "otelTraceID"]),
        f(&["method", "http_method"]),
        f(&["path", "url", "http_path"]),
        f(&["status", "status_code", "statusCode"]),
        f(&["duration_ms", "elapsed_ms"]),
        f(&["exc_info", "exception", "stack_info", "stack_trace", "error"]),
    ];
    let names =
        [("info", 2u8), ("debug", 1), ("warning", 3), ("error", 4)].iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let spec = Spec {
        fields,
        root: vec![],
        lifts: vec![],
        always_consumed: vec![],
        levels: Levels {
            scheme: Scheme::Auto,
            names,
            pino: [0, 1, 2, 3, 4, 5],
            python: [0, 1, 2, 3, 4, 5],
            syslog: [5, 5, 5, 4, 3, 2, 2, 1],
        },
        label_service: None,
        label_host: Some("h".into()),
        extra_labels: vec![],
    };
    let n = Normaliser::new(spec);
    let mut ctx = ContextMap::new(200_000, 3_600_000_000);
    let start = std::time::Instant::now();
    let mut rows = 0;
    for chunk in data.chunks(8 << 20) {
        let framed = frame(chunk, 0, 1 << 20, 65536);
        let lines: Vec<&[u8]> = framed.cuts.windows(2).map(|w| &framed.data[w[0] as usize..w[1] as usize]).collect();
        let info = BatchInfo { source: "/p", source_key: "k", read_time_us: 1, unterminated_offset: -1 };
        let out = n.run(&lines, &framed.offsets, &[], &info, &mut ctx);
        rows += out.columns.offset.values.len();
    }
    let s = start.elapsed().as_secs_f64();
    println!("{rows} rows in {s:.3} s: {:.3} us/row", s * 1e6 / rows as f64);
}
