//! Ids turned into placeholders: endpoint templates and message keys.
//!
//! - endpoint: `/api/users/123?x=1` -> `/api/users/{id}`. A path segment (after a `/`) that is all
//!   decimal digits, a UUID, or 16+ hex digits (Mongo ObjectIds, digests) is an id; a scheme and
//!   host are stripped, and so are the query and fragment.
//! - message key: every run of hex digits, dots, colons and dashes that holds a decimal digit
//!   becomes `<*>`, so numbers, UUIDs, hex ids, versions, IPs and ports all collapse and
//!   "user 41 failed" groups with "user 42 failed".

fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_id_segment(s: &[u8]) -> bool {
    (!s.is_empty() && s.iter().all(u8::is_ascii_digit))
        || is_uuid(s)
        || (s.len() >= 16 && s.iter().all(u8::is_ascii_hexdigit))
}

/// `scheme://host` at the start of `path`, if any: its length.
fn scheme_and_host(path: &[u8]) -> usize {
    if !path.first().is_some_and(u8::is_ascii_alphabetic) {
        return 0;
    }
    let scheme = path
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'.' | b'-')))
        .unwrap_or(path.len());
    if !path[scheme..].starts_with(b"://") {
        return 0;
    }
    let host = scheme + 3;
    host + path[host..].iter().position(|&c| c == b'/').unwrap_or(path.len() - host)
}

/// Append the endpoint template of `path` to `out`.
pub fn endpoint(path: &str, out: &mut Vec<u8>) {
    let b = path.as_bytes();
    let start = scheme_and_host(b);
    let end = start + b[start..].iter().position(|&c| c == b'?' || c == b'#').unwrap_or(b.len() - start);
    for (i, segment) in b[start..end].split(|&c| c == b'/').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        if i > 0 && is_id_segment(segment) {
            out.extend_from_slice(b"{id}");
        } else {
            out.extend_from_slice(segment);
        }
    }
}

fn in_id_run(c: u8) -> bool {
    c.is_ascii_hexdigit() || matches!(c, b'.' | b':' | b'-')
}

/// Append the message key of `message` to `out`.
pub fn message_key(message: &str, out: &mut Vec<u8>) {
    let b = message.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !in_id_run(b[i]) {
            let next = b[i..].iter().position(|&c| in_id_run(c)).map_or(b.len(), |p| i + p);
            out.extend_from_slice(&b[i..next]);
            i = next;
            continue;
        }
        let end = b[i..].iter().position(|&c| !in_id_run(c)).map_or(b.len(), |p| i + p);
        if b[i..end].iter().any(u8::is_ascii_digit) {
            out.extend_from_slice(b"<*>");
        } else {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(p: &str) -> String {
        let mut out = Vec::new();
        endpoint(p, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn key(m: &str) -> String {
        let mut out = Vec::new();
        message_key(m, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn endpoints() {
        assert_eq!(ep("/api/users/123"), "/api/users/{id}");
        assert_eq!(ep("/a/1/2"), "/a/{id}/{id}");
        assert_eq!(ep("https://example.com:8443/api/v2/users/9?x=1"), "/api/v2/users/{id}");
        assert_eq!(ep("/orders/3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b/items"), "/orders/{id}/items");
        assert_eq!(ep("/files/abc123"), "/files/abc123");
        assert_eq!(ep("/users/7#top"), "/users/{id}");
        assert_eq!(ep("/"), "/");
        assert_eq!(ep("12/34"), "12/{id}");
    }

    #[test]
    fn keys() {
        assert_eq!(key("user 41 failed"), "user <*> failed");
        assert_eq!(key("connect to 10.0.0.12:5432 refused"), "connect to <*> refused");
        assert_eq!(key("took 1.5s"), "took <*>s");
        assert_eq!(key("no ids here"), "no ids here");
        assert_eq!(key("café 5€"), "café <*>€");
    }
}
