//! Timestamps: ISO 8601 with any offset (naive means UTC), or unix seconds/ms/µs/ns by magnitude.
//!
//! Results are microseconds since the epoch, limited to years 1..=9999 so that every reader
//! (Python's datetime among them) can hold them. Fractions finer than a microsecond are cut off.
//! RFC 3339 forms are ISO 8601 too: a lower-case `t` and `z`, and a leap second (`23:59:60`),
//! which no reader can hold: it becomes the last microsecond of its minute (`23:59:59.999999`),
//! so the record keeps its day and minute and sorts after the minute's other records.

const MIN_US: i64 = -62_135_596_800_000_000; // 0001-01-01T00:00:00Z
const MAX_US: i64 = 253_402_300_799_999_999; // 9999-12-31T23:59:59.999999Z

fn in_range(us: i64) -> Option<i64> {
    (MIN_US..=MAX_US).contains(&us).then_some(us)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Between `min` and `max` decimal digits as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let start = self.i;
        let mut v = 0i64;
        while self.i - start < max {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    v = v * 10 + i64::from(c - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i - start >= min).then_some(v)
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

/// Offset east of UTC in seconds, from `Z`, ` UTC`, `+HH`, `+HH:MM`, `+HHMM` or `+HH:MM:SS`.
fn offset_seconds(c: &mut Cursor<'_>) -> Option<i64> {
    if c.done() {
        return Some(0);
    }
    if c.eat(b'Z') || c.eat(b'z') {
        return Some(0);
    }
    let rest = &c.b[c.i..];
    if rest == b" UTC" || rest == b"UTC" || rest == b" GMT" || rest == b"GMT" {
        c.i = c.b.len();
        return Some(0);
    }
    let sign = match c.peek()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    c.i += 1;
    let hours = c.digits(2, 2)?;
    let mut minutes = 0;
    let mut seconds = 0;
    if !c.done() {
        let colon = c.eat(b':');
        minutes = c.digits(2, 2)?;
        if !c.done() && (!colon || c.eat(b':')) {
            seconds = c.digits(2, 2)?;
        }
    }
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60 + seconds))
}

/// Microseconds since the epoch of an ISO 8601 date or date-time, or None.
pub fn parse_iso(text: &str) -> Option<i64> {
    let mut c = Cursor { b: text.trim().as_bytes(), i: 0 };
    let year = c.digits(4, 4)?;
    if !c.eat(b'-') {
        return None;
    }
    let month = c.digits(1, 2)?;
    if !c.eat(b'-') {
        return None;
    }
    let day = c.digits(1, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut micros) = (0, 0, 0, 0);
    if !c.done() && (c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        hour = c.digits(1, 2)?;
        if !c.eat(b':') {
            return None;
        }
        minute = c.digits(2, 2)?;
        if c.eat(b':') {
            second = c.digits(1, 2)?;
            if c.eat(b'.') || c.eat(b',') {
                let start = c.i;
                while matches!(c.peek(), Some(b'0'..=b'9')) {
                    c.i += 1;
                }
                let n = c.i - start;
                if n == 0 {
                    return None;
                }
                // Cut, not rounded: only the first six digits count.
                let kept = &c.b[start..start + n.min(6)];
                let value = kept.iter().fold(0, |v, d| v * 10 + i64::from(d - b'0'));
                micros = value * 10i64.pow(6 - kept.len() as u32);
            }
        }
        let midnight = hour == 24 && minute == 0 && second == 0 && micros == 0;
        if (hour > 23 && !midnight) || minute > 59 || second > 60 {
            return None;
        }
        if second == 60 {
            // A leap second: the last microsecond of its minute (see the module's note).
            (second, micros) = (59, 999_999);
        }
    }
    let offset = offset_seconds(&mut c)?;
    if !c.done() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    in_range(seconds.checked_mul(1_000_000)?.checked_add(micros)?)
}

/// An integer unix time whose unit is told by its magnitude: s, ms, µs or ns.
fn from_int(n: i128) -> Option<i64> {
    let a = n.abs();
    let us = if a < 100_000_000_000 {
        n * 1_000_000
    } else if a < 100_000_000_000_000 {
        n * 1_000
    } else if a < 100_000_000_000_000_000 {
        n
    } else {
        n / 1_000
    };
    in_range(i64::try_from(us).ok()?)
}

fn from_float(d: f64) -> Option<i64> {
    if !d.is_finite() {
        return None;
    }
    let a = d.abs();
    let us = if a < 1e11 {
        d * 1e6
    } else if a < 1e14 {
        d * 1e3
    } else if a < 1e17 {
        d
    } else {
        d / 1e3
    }
    .round();
    if us.abs() > 9.2e18 {
        return None;
    }
    in_range(us as i64)
}

fn is_integer_text(t: &str) -> bool {
    let digits = t.strip_prefix('-').unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
}

/// A number written as text, as a lenient SQL cast reads it: spaces around, `+`, `1e3`.
pub fn parse_f64(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() || t.bytes().any(|c| c.is_ascii_alphabetic() && c != b'e' && c != b'E') {
        return None; // Rust would also read "inf" and "nan": no number a log means
    }
    t.parse::<f64>().ok()
}

/// Microseconds since the epoch of a raw timestamp value, or None if it is no time.
pub fn parse_ts(raw: &str) -> Option<i64> {
    if let Some(us) = parse_iso(raw) {
        return Some(us);
    }
    if is_integer_text(raw) {
        if let Ok(n) = raw.parse::<i128>() {
            return from_int(n);
        }
    }
    parse_f64(raw).and_then(from_float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso() {
        assert_eq!(parse_iso("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso("1970-01-01"), Some(0));
        assert_eq!(parse_iso("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_iso("1970-01-01T01:00:00+0100"), Some(0));
        assert_eq!(parse_iso("1970-01-01 00:00:01,5"), Some(1_500_000));
        assert_eq!(parse_iso("1970-01-01T00:00:00.1234567Z"), Some(123_456));
        assert_eq!(parse_iso("1969-12-31T24:00:00Z"), Some(0));
        assert_eq!(parse_iso("2026-02-29T00:00:00Z"), None);
        assert!(parse_iso("2024-02-29T00:00:00Z").is_some());
        assert_eq!(parse_iso("2026-11-20T10Z"), None);
        assert_eq!(parse_iso("yesterday"), None);
    }

    #[test]
    fn rfc3339_lower_case_and_leap_seconds() {
        assert_eq!(parse_iso("1970-01-01t00:00:01z"), Some(1_000_000));
        assert_eq!(parse_iso("1970-01-01t00:00:01.5+00:00"), Some(1_500_000));
        // 2016-12-31T23:59:60Z: the last microsecond of 2016, fractions of the leap second too.
        let last_of_2016 = 1_483_228_799_999_999;
        assert_eq!(parse_iso("2016-12-31T23:59:60Z"), Some(last_of_2016));
        assert_eq!(parse_iso("2016-12-31T23:59:60.5Z"), Some(last_of_2016));
        assert_eq!(parse_iso("2017-01-01T00:59:60+01:00"), Some(last_of_2016));
        assert_eq!(parse_iso("2016-12-31T23:59:61Z"), None);
        assert_eq!(parse_iso("2016-12-31T24:00:60Z"), None);
        assert_eq!(parse_iso("1970-01-01x00:00:01Z"), None);
        assert_eq!(parse_iso("1970-01-01T00:00:01Zz"), None);
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_ts("1700000000"), Some(1_700_000_000_000_000));
        assert_eq!(parse_ts("1700000000000"), Some(1_700_000_000_000_000));
        assert_eq!(parse_ts("1700000000000000"), Some(1_700_000_000_000_000));
        assert_eq!(parse_ts("1700000000000000000"), Some(1_700_000_000_000_000));
        assert_eq!(parse_ts("1700000000.5"), Some(1_700_000_000_500_000));
        assert_eq!(parse_ts("inf"), None);
        assert_eq!(parse_ts(""), None);
    }
}
