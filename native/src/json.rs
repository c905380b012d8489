//! A strict JSON scanner (RFC 8259) that exposes a line's object members as raw byte slices.
//!
//! The normaliser needs two things from a line: is it a valid JSON object within the depth limit,
//! and where are its members, so that canonical fields can be read and every other member copied
//! into `attrs` byte for byte. Nothing is built: values stay slices of the line.
//!
//! Duplicate keys are last-wins, as JSON.parse, Python's `json` and jq read them: an object's
//! members come out with each key once, where it first stood, holding its last value (so pino's
//! `"userId":null,...,"userId":"u1"` names the user). Nested objects copied whole keep their text.
//!
//! The scanner never recurses (an explicit stack of open containers), so no nesting can overflow
//! the thread's stack; lines deeper than MAX_DEPTH are refused with their depth.
//!
//! Strictness is Python's `json` without its extensions: NaN/Infinity literals are refused (with
//! their own reason), as are trailing commas, control characters in strings, leading zeros and
//! any text after the value. One addition: a `\u` escape of a lone UTF-16 surrogate is refused,
//! because such a string has no UTF-8 form and every store downstream would choke on it.

use std::borrow::Cow;

use rustc_hash::FxHashMap;

/// Deepest nesting of objects and arrays a line may have (a flat object is depth 1): any document
/// a mainstream parser reads (serde_json stops at 128, orjson past 1,024, Python's `json` at its
/// recursion limit of 1,000), while bounding what a downstream reader must cope with.
pub const MAX_DEPTH: usize = 1000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Object,
    Array,
    String,
    Int,
    Float,
    Bool,
    Null,
}

impl Kind {
    /// The Python type a value of this kind loads as (for dead-letter details).
    pub fn python_name(self) -> &'static str {
        match self {
            Kind::Object => "dict",
            Kind::Array => "list",
            Kind::String => "str",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Bool => "bool",
            Kind::Null => "NoneType",
        }
    }
}

/// Why a line is not a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Fail {
    Invalid(String),
    NonFinite(&'static str),
}

fn invalid(what: &str, at: usize) -> Fail {
    Fail::Invalid(format!("{what} at char {at}"))
}

/// One member of an object: the key as written (between its quotes) and the value's text, both
/// slices of the line (cut at ASCII quotes, brackets and token ends, so always at char boundaries).
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    pub key_raw: &'a str,
    /// The key has escapes (rare): it must be decoded to be compared.
    pub key_escaped: bool,
    pub value: &'a str,
    pub kind: Kind,
}

impl<'a> Member<'a> {
    pub fn key(&self) -> Cow<'a, str> {
        if self.key_escaped {
            decode_string(self.key_raw)
        } else {
            Cow::Borrowed(self.key_raw)
        }
    }
}

#[inline]
pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let digits = b.get(i..i + 4)?;
    let mut v = 0u32;
    for &d in digits {
        v = v * 16 + (d as char).to_digit(16)?;
    }
    Some(v)
}

/// The first index at or after `i` holding a quote, a backslash or a control character.
///
/// Eight bytes at a time (SWAR): a byte is flagged by the classic "has zero byte" trick applied
/// to `x ^ quote`, `x ^ backslash` and `x - 0x20`; the lowest flagged byte is exact.
#[inline]
fn string_stop(b: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while i + 8 <= b.len() {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let quote = x ^ (LO * u64::from(b'"'));
        let slash = x ^ (LO * u64::from(b'\\'));
        let flags =
            (quote.wrapping_sub(LO) & !quote | slash.wrapping_sub(LO) & !slash | x.wrapping_sub(LO * 0x20) & !x) & HI;
        if flags != 0 {
            return i + (flags.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && b[i] != b'"' && b[i] != b'\\' && b[i] >= 0x20 {
        i += 1;
    }
    i
}

/// The index just past the string whose opening quote is at `i`, and whether it has escapes.
pub fn skip_string_escapes(b: &[u8], mut i: usize) -> Result<(usize, bool), Fail> {
    i += 1;
    let mut escaped = false;
    loop {
        i = string_stop(b, i);
        match b.get(i) {
            None => return Err(invalid("unterminated string", i)),
            Some(b'"') => return Ok((i + 1, escaped)),
            Some(b'\\') => {
                escaped = true;
                match b.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let cp = hex4(b, i + 2).ok_or_else(|| invalid("bad \\u escape", i))?;
                        if (0xD800..0xDC00).contains(&cp) {
                            let low = if b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u') {
                                hex4(b, i + 8)
                            } else {
                                None
                            };
                            match low {
                                Some(lo) if (0xDC00..0xE000).contains(&lo) => i += 12,
                                _ => return Err(invalid("lone surrogate in \\u escape", i)),
                            }
                        } else if (0xDC00..0xE000).contains(&cp) {
                            return Err(invalid("lone surrogate in \\u escape", i));
                        } else {
                            i += 6;
                        }
                    }
                    _ => return Err(invalid("bad escape", i)),
                }
            }
            Some(_) => return Err(invalid("control character in string", i)),
        }
    }
}

/// The index just past the string whose opening quote is at `i`.
pub fn skip_string(b: &[u8], i: usize) -> Result<usize, Fail> {
    skip_string_escapes(b, i).map(|(end, _)| end)
}

fn skip_digits(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i
}

fn skip_number(b: &[u8], start: usize) -> Result<(usize, Kind), Fail> {
    let mut i = start;
    if b[i] == b'-' {
        i += 1;
        if b[i..].starts_with(b"Infinity") {
            return Err(Fail::NonFinite("-Infinity"));
        }
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = skip_digits(b, i),
        _ => return Err(invalid("bad number", start)),
    }
    let mut kind = Kind::Int;
    if b.get(i) == Some(&b'.') {
        let j = skip_digits(b, i + 1);
        if j == i + 1 {
            return Err(invalid("bad number", start));
        }
        i = j;
        kind = Kind::Float;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let j = skip_digits(b, i);
        if j == i {
            return Err(invalid("bad number", start));
        }
        i = j;
        kind = Kind::Float;
    }
    Ok((i, kind))
}

fn literal(b: &[u8], i: usize, word: &[u8], kind: Kind) -> Result<(usize, Kind), Fail> {
    if b[i..].starts_with(word) {
        Ok((i + word.len(), kind))
    } else {
        Err(invalid("unexpected character", i))
    }
}

/// `"key" :` starting at `i` (a quote expected there); returns the index after the colon.
fn skip_key(b: &[u8], i: usize) -> Result<usize, Fail> {
    if b.get(i) != Some(&b'"') {
        return Err(invalid("expected a key", i));
    }
    let j = skip_ws(b, skip_string(b, i)?);
    if b.get(j) != Some(&b':') {
        return Err(invalid("expected ':'", j));
    }
    Ok(j + 1)
}

/// Validate the value at `i` (after any whitespace), which sits inside `depth` containers.
///
/// Iterative, so any nesting is safe; `deepest` is raised to the deepest container seen.
/// Returns the index just past the value and the value's kind.
pub fn skip_value(
    b: &[u8],
    i: usize,
    depth: usize,
    deepest: &mut usize,
    stack: &mut Vec<u8>,
) -> Result<(usize, Kind), Fail> {
    stack.clear();
    let mut i = skip_ws(b, i);
    let mut outer: Option<Kind> = None;
    loop {
        // A value starts at i.
        let c = match b.get(i) {
            Some(&c) => c,
            None => return Err(invalid("unexpected end", i)),
        };
        let scalar = match c {
            b'{' | b'[' => {
                stack.push(c);
                *deepest = (*deepest).max(depth + stack.len());
                outer.get_or_insert(if c == b'{' { Kind::Object } else { Kind::Array });
                i = skip_ws(b, i + 1);
                let close = if c == b'{' { b'}' } else { b']' };
                if b.get(i) == Some(&close) {
                    stack.pop();
                    i += 1;
                    None
                } else {
                    if c == b'{' {
                        i = skip_ws(b, skip_key(b, i)?);
                    }
                    continue;
                }
            }
            b'"' => Some((skip_string(b, i)?, Kind::String)),
            b't' => Some(literal(b, i, b"true", Kind::Bool)?),
            b'f' => Some(literal(b, i, b"false", Kind::Bool)?),
            b'n' => Some(literal(b, i, b"null", Kind::Null)?),
            b'N' if b[i..].starts_with(b"NaN") => return Err(Fail::NonFinite("NaN")),
            b'I' if b[i..].starts_with(b"Infinity") => return Err(Fail::NonFinite("Infinity")),
            b'-' | b'0'..=b'9' => Some(skip_number(b, i)?),
            _ => return Err(invalid("unexpected character", i)),
        };
        if let Some((end, kind)) = scalar {
            i = end;
            outer.get_or_insert(kind);
        }
        // A value ended at i: close containers until one goes on with a comma.
        loop {
            let top = match stack.last() {
                None => return Ok((i, outer.unwrap_or(Kind::Null))),
                Some(&t) => t,
            };
            i = skip_ws(b, i);
            match (top, b.get(i)) {
                (_, Some(b',')) => {
                    i = skip_ws(b, i + 1);
                    if top == b'{' {
                        i = skip_ws(b, skip_key(b, i)?);
                    }
                    break;
                }
                (b'{', Some(b'}')) | (b'[', Some(b']')) => {
                    stack.pop();
                    i += 1;
                }
                _ => return Err(invalid("expected ',' or a closing bracket", i)),
            }
        }
    }
}

/// What a line turned out to be, when it is not an object record.
#[derive(Debug, PartialEq, Eq)]
pub enum LineError {
    /// Only whitespace: not a record and not worth a dead letter.
    Blank,
    Reject {
        reason: &'static str,
        detail: String,
    },
}

fn reject(fail: Fail) -> LineError {
    match fail {
        Fail::Invalid(detail) => LineError::Reject { reason: "invalid_json", detail },
        Fail::NonFinite(name) => {
            LineError::Reject { reason: "non_finite_number", detail: format!("non-finite number literal {name}") }
        }
    }
}

fn expect_end(b: &[u8], i: usize) -> Result<(), LineError> {
    let j = skip_ws(b, i);
    if j == b.len() {
        Ok(())
    } else {
        Err(reject(invalid("extra data", j)))
    }
}

/// Parse a whole line that must be one JSON object; its members go to `members` in order.
///
/// Syntax errors win over the other reasons, then "not an object", then depth, as a strict
/// parser would find them. The line is a `str`: members are slices of it, so they are text.
pub fn parse_line<'a>(line: &'a str, members: &mut Vec<Member<'a>>, stack: &mut Vec<u8>) -> Result<(), LineError> {
    members.clear();
    let b = line.as_bytes();
    let i = skip_ws(b, 0);
    if i == b.len() {
        return Err(LineError::Blank);
    }
    let mut deepest = 0;
    if b[i] != b'{' {
        let (end, kind) = skip_value(b, i, 0, &mut deepest, stack).map_err(reject)?;
        expect_end(b, end)?;
        return Err(LineError::Reject {
            reason: "not_an_object",
            detail: format!("a JSON {}, not an object", kind.python_name()),
        });
    }
    deepest = 1;
    let end = object_members(line, i, &mut deepest, members, stack).map_err(reject)?;
    expect_end(b, end)?;
    if deepest > MAX_DEPTH {
        return Err(LineError::Reject { reason: "too_deep", detail: format!("nesting depth {deepest} > {MAX_DEPTH}") });
    }
    last_wins(members);
    Ok(())
}

/// A fingerprint of a key's text (its length, first and last 8 bytes, mixed), for the filter of
/// `last_wins`: keys that share its top bits are only suspects, compared exactly. Of the text,
/// so `"a"` and `"\u0061"` are one key.
#[inline]
fn key_fingerprint(m: &Member<'_>) -> u64 {
    let decoded;
    let k: &[u8] = if m.key_escaped {
        decoded = m.key();
        decoded.as_bytes()
    } else {
        m.key_raw.as_bytes()
    };
    let n = k.len();
    let x = if n >= 8 {
        let head = u64::from_le_bytes(k[..8].try_into().unwrap_or_default());
        let tail = u64::from_le_bytes(k[n - 8..].try_into().unwrap_or_default());
        head ^ tail.rotate_left(29)
    } else {
        let mut short = [0u8; 8];
        short[..n].copy_from_slice(k);
        u64::from_le_bytes(short)
    };
    (x ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Resolve duplicate keys as `json.loads` does: each key once, at its first position, with the
/// value of its last occurrence.
///
/// Runs on every object read, so the usual case (no duplicates) costs a few instructions per key:
/// a 1024-bucket filter of fingerprints, an exact comparison only with keys of the same bucket,
/// and the rewrite (a hash map: linear even for a line of a hundred thousand keys) only when a key
/// really repeats.
pub fn last_wins(members: &mut Vec<Member<'_>>) {
    let n = members.len();
    if n < 2 {
        return;
    }
    if n > 64 {
        dedupe(members); // rare: not worth a filter
        return;
    }
    let mut seen = [0u64; 16];
    let mut buckets = [0u16; 64];
    for j in 0..n {
        let bucket = (key_fingerprint(&members[j]) >> 54) as u16;
        let (word, bit) = (usize::from(bucket >> 6), 1u64 << (bucket & 63));
        if seen[word] & bit != 0 {
            let key = members[j].key();
            if (0..j).any(|i| buckets[i] == bucket && members[i].key() == key) {
                dedupe(members);
                return;
            }
        }
        seen[word] |= bit;
        buckets[j] = bucket;
    }
}

fn dedupe(members: &mut Vec<Member<'_>>) {
    let mut first: FxHashMap<Cow<'_, str>, usize> = FxHashMap::default();
    let mut keep = vec![true; members.len()];
    for j in 0..members.len() {
        let key = members[j].key();
        match first.get(&key) {
            Some(&i) => {
                members[i].value = members[j].value;
                members[i].kind = members[j].kind;
                keep[j] = false;
            }
            None => {
                first.insert(key, j);
            }
        }
    }
    let mut at = 0;
    members.retain(|_| {
        at += 1;
        keep[at - 1]
    });
}

/// The members of the object whose `{` is at byte `i` of `text`; returns the index past its `}`.
///
/// Members are cut from `text` by `str` slicing: every cut sits next to an ASCII byte (a quote,
/// a structural character, whitespace or the end of a number or literal), so it is a char
/// boundary and the slicing's boundary check always passes.
fn object_members<'a>(
    text: &'a str,
    i: usize,
    deepest: &mut usize,
    members: &mut Vec<Member<'a>>,
    stack: &mut Vec<u8>,
) -> Result<usize, Fail> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Ok(i + 1);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return Err(invalid("expected a key", i));
        }
        let (key_end, key_escaped) = skip_string_escapes(b, i)?;
        let key_raw = &text[i + 1..key_end - 1];
        let colon = skip_ws(b, key_end);
        if b.get(colon) != Some(&b':') {
            return Err(invalid("expected ':'", colon));
        }
        let start = skip_ws(b, colon + 1);
        let (end, kind) = skip_value(b, start, 1, deepest, stack)?;
        members.push(Member { key_raw, key_escaped, value: &text[start..end], kind });
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return Ok(i + 1),
            _ => return Err(invalid("expected ',' or '}'", i)),
        }
    }
}

/// The members of an object value already validated as part of a line (duplicates resolved).
pub fn members_of<'a>(value: &'a str, out: &mut Vec<Member<'a>>, stack: &mut Vec<u8>) {
    out.clear();
    let mut deepest = 0;
    // Validated before, so this cannot fail; an error would only leave `out` short.
    let _ = object_members(value, 0, &mut deepest, out, stack);
    last_wins(out);
}

/// A string's text from its raw form between the quotes (escapes already validated).
pub fn decode_string(text: &str) -> Cow<'_, str> {
    let raw = text.as_bytes();
    if !raw.contains(&b'\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            // Runs start and end at a backslash escape or an end of the text: char boundaries.
            let next = raw[i..].iter().position(|&x| x == b'\\').map_or(raw.len(), |p| i + p);
            out.push_str(&text[i..next]);
            i = next;
            continue;
        }
        let e = raw[i + 1];
        i += 2;
        let ch = match e {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            _ => {
                let hi = hex4(raw, i).unwrap_or(0xFFFD);
                i += 4;
                if (0xD800..0xDC00).contains(&hi) {
                    let lo = hex4(raw, i + 2).unwrap_or(0xDC00);
                    i += 6;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)).unwrap_or('\u{FFFD}')
                } else {
                    char::from_u32(hi).unwrap_or('\u{FFFD}')
                }
            }
        };
        out.push(ch);
    }
    Cow::Owned(out)
}

/// Append `text` to `out` as a JSON string literal.
pub fn write_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let escape: Option<&[u8]> = match c {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        match escape {
            Some(e) => out.extend_from_slice(e),
            None => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str) -> Result<usize, LineError> {
        let mut m = Vec::new();
        let mut s = Vec::new();
        parse_line(line, &mut m, &mut s).map(|_| m.len())
    }

    fn reason(line: &str) -> &'static str {
        match check(line) {
            Err(LineError::Reject { reason, .. }) => reason,
            Err(LineError::Blank) => "blank",
            Ok(_) => "ok",
        }
    }

    #[test]
    fn accepts_objects() {
        assert_eq!(check(r#"{"a":1,"b":[1,2.5e3,{"c":null}],"d":"x\"y\u00e9\ud83d\ude00"}"#).unwrap(), 3);
        assert_eq!(check(" {} \r").unwrap(), 0);
    }

    #[test]
    fn reasons() {
        for (line, want) in [
            ("not json", "invalid_json"),
            (r#"{"a":1"#, "invalid_json"),
            (r#"{"a":1,}"#, "invalid_json"),
            (r#"{"a":[1,2,]}"#, "invalid_json"),
            (r#"{"a":1} x"#, "invalid_json"),
            (r#"{"a":01}"#, "invalid_json"),
            (r#"{"a":"\ud800"}"#, "invalid_json"),
            ("{\"a\":\"\t\"}", "invalid_json"),
            (r#"{"a":NaN}"#, "non_finite_number"),
            (r#"{"a":[-Infinity]}"#, "non_finite_number"),
            ("[1,2]", "not_an_object"),
            ("42", "not_an_object"),
            ("  ", "blank"),
        ] {
            assert_eq!(reason(line), want, "{line}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(reason(&format!(r#"{{"a":{deep}}}"#)), "too_deep");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert_eq!(reason(&format!(r#"{{"a":{ok}}}"#)), "ok");
    }

    #[test]
    fn absurd_depth_is_refused_not_a_crash() {
        // Far past any recursion limit: the explicit stack grows on the heap instead.
        let n = 400_000;
        let line = format!(r#"{{"a":{}1{}}}"#, "[".repeat(n), "]".repeat(n));
        let mut m = Vec::new();
        let mut s = Vec::new();
        match parse_line(&line, &mut m, &mut s) {
            Err(LineError::Reject { reason, detail }) => {
                assert_eq!(reason, "too_deep");
                assert_eq!(detail, format!("nesting depth {} > {MAX_DEPTH}", n + 1));
            }
            _ => panic!("not refused"),
        }
    }

    fn pairs(line: &str) -> Vec<(String, String)> {
        let mut m = Vec::new();
        let mut s = Vec::new();
        parse_line(line, &mut m, &mut s).unwrap();
        m.iter().map(|x| (x.key().into_owned(), x.value.to_string())).collect()
    }

    #[test]
    fn duplicates_are_last_wins_at_the_first_position() {
        let got = pairs(r#"{"a":1,"b":2,"a":null,"c":3,"a":"x"}"#);
        let want = [("a", r#""x""#), ("b", "2"), ("c", "3")];
        assert_eq!(got, want.map(|(k, v)| (k.to_string(), v.to_string())));
        // An escaped spelling is the same key.
        assert_eq!(pairs(r#"{"ab":1,"a\u0062":2}"#), [("ab".to_string(), "2".to_string())]);
        // Nested objects are resolved when read.
        let mut inner = Vec::new();
        let mut s = Vec::new();
        members_of(r#"{"k":1,"k":{"z":0}}"#, &mut inner, &mut s);
        assert_eq!(inner.len(), 1);
        assert_eq!((inner[0].value, inner[0].kind), (r#"{"z":0}"#, Kind::Object));
    }

    #[test]
    fn many_distinct_keys_stay_linear() {
        // 100k distinct keys saturate the filter: the exact check must not be quadratic.
        let body: Vec<String> = (0..100_000).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let line = format!("{{{},\"k7\":\"last\"}}", body.join(","));
        let got = pairs(&line);
        assert_eq!(got.len(), 100_000);
        assert_eq!(got[7], ("k7".to_string(), r#""last""#.to_string()));
    }

    #[test]
    fn decodes() {
        assert_eq!(decode_string(r#"a\n\"\u00e9\ud83d\ude00"#), "a\n\"é😀");
        let mut out = Vec::new();
        write_string(&mut out, "a\"\n\u{1}");
        assert_eq!(out, br#""a\"\n\u0001""#);
    }
}
