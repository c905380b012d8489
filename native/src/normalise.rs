//! Lines of one format profile to canonical record columns, in one pass per line.
//!
//! A profile (compiled in Python from `logpipe/parse/profiles.py`) lists, per canonical field,
//! the JSON paths it may come from. The paths become a trie walked once over each line's
//! members; duplicate keys are already resolved last-wins by the scanner (at every depth read),
//! so a path has one value, and the first path with a non-null value gives the field.
//! `attrs` is the root object minus the keys canonical fields were read from, its members copied
//! byte for byte, so it loses nothing.

use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;

use crate::columns::{NumCol, StrCol, TextCol};
use crate::context::ContextMap;
use crate::framing;
use crate::json::{self, Kind, LineError, Member};
use crate::masks;
use crate::time;

pub const LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const INFO: u8 = 2;
const WARNING: u8 = 3;

// Canonical field positions, in the order of `FIELDS` in logpipe/parse/profiles.py.
pub const FIELD_COUNT: usize = 15;
const TS: usize = 0;
const LEVEL: usize = 1;
const MESSAGE: usize = 2;
const LOGGER: usize = 3;
const SERVICE: usize = 4;
const HOST: usize = 5;
const REQUEST_ID: usize = 6;
const USER_ID: usize = 7;
const SESSION_ID: usize = 8;
const TRACE_ID: usize = 9;
const METHOD: usize = 10;
const PATH: usize = 11;
const STATUS: usize = 12;
const DURATION: usize = 13;
const ERROR: usize = 14;

/// How a field's path values combine. Most fields take the first non-null path; a few formats
/// spread one field over several keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Combine {
    First,
    /// ECS `event.duration` is nanoseconds: {0} or {1}, divided by 1e6.
    NanosToMillis,
    /// ECS error: the stack trace ({0},{1}), else "type: message" from {2}/{3} and {4}/{5}.
    EcsError,
    /// loguru: "type: value" from {0} and {1}, a newline, and the rendered text {2}.
    LoguruError,
}

impl Combine {
    pub fn parse(name: &str) -> Option<Combine> {
        Some(match name {
            "first" => Combine::First,
            "nanos_to_millis" => Combine::NanosToMillis,
            "ecs_error" => Combine::EcsError,
            "loguru_error" => Combine::LoguruError,
            _ => return None,
        })
    }
}

pub struct FieldSpec {
    pub paths: Vec<Vec<String>>,
    pub combine: Combine,
    /// Per path (with `First`): the factor that turns its number into the field's unit (a
    /// duration named in seconds is 1000 ms each). Empty, or 1.0 for a path: taken as written.
    pub scales: Vec<f64>,
}

#[derive(Clone, Copy)]
pub enum Scheme {
    Auto,
    Pino,
    Python,
    Syslog,
}

pub struct Levels {
    pub scheme: Scheme,
    /// Lower-case names and synonyms -> level index.
    pub names: HashMap<String, u8>,
    pub pino: [u8; 6],
    pub python: [u8; 6],
    pub syslog: [u8; 8],
}

impl Levels {
    fn number(raw: &str) -> Option<i64> {
        let t = raw.trim();
        if let Ok(n) = t.parse::<i64>() {
            return Some(n);
        }
        let d = time::parse_f64(t)?;
        (d.is_finite() && d.abs() < 2e9).then(|| d.round_ties_even() as i64)
    }

    /// The level index of a raw level value, or None when it names no level.
    pub fn map(&self, raw: &str) -> Option<u8> {
        if let Some(i) = LEVELS.iter().position(|l| *l == raw) {
            return Some(i as u8);
        }
        if let Some(n) = Self::number(raw) {
            let pino = || self.pino[(n / 10).clamp(1, 6) as usize - 1];
            let syslog = || self.syslog[n.clamp(0, 7) as usize];
            return Some(match self.scheme {
                Scheme::Pino => pino(),
                Scheme::Python => self.python[(n / 10).clamp(0, 5) as usize],
                Scheme::Syslog => syslog(),
                Scheme::Auto if n <= 7 => syslog(),
                Scheme::Auto => pino(),
            });
        }
        let trimmed = raw.trim();
        if trimmed.bytes().any(|c| c.is_ascii_uppercase()) {
            self.names.get(&trimmed.to_ascii_lowercase()).copied()
        } else {
            self.names.get(trimmed).copied()
        }
    }
}

pub struct Lift {
    pub path: Vec<String>,
    /// Keys of the lifted object that canonical fields read: they stay out of attrs.
    pub drop: Vec<String>,
}

pub struct Spec {
    pub fields: Vec<FieldSpec>,
    pub root: Vec<String>,
    pub lifts: Vec<Lift>,
    pub always_consumed: Vec<String>,
    pub levels: Levels,
    pub label_service: Option<String>,
    pub label_host: Option<String>,
    pub extra_labels: Vec<(String, String)>,
}

#[derive(Default)]
struct Node {
    children: HashMap<String, usize>,
    slots: Vec<usize>,
}

/// Where each path's value lands: a trie of keys whose nodes name the slots they fill.
struct Trie {
    nodes: Vec<Node>,
}

impl Trie {
    fn insert(&mut self, path: &[String], slot: usize) {
        let mut at = 0;
        for key in path {
            at = match self.nodes[at].children.get(key) {
                Some(&next) => next,
                None => {
                    self.nodes.push(Node::default());
                    let next = self.nodes.len() - 1;
                    self.nodes[at].children.insert(key.clone(), next);
                    next
                }
            };
        }
        self.nodes[at].slots.push(slot);
    }
}

type Slot<'a> = Option<(&'a str, Kind)>;

/// A compiled profile: the normaliser of one format.
pub struct Normaliser {
    spec: Spec,
    trie: Trie,
    /// Per field: the index of its first slot (its paths' slots are consecutive).
    first_slot: Vec<usize>,
    slot_count: usize,
    /// Per slot: the root key whose member leaves attrs when this slot gives the field.
    consumes: Vec<Option<String>>,
}

/// Per-batch values.
pub struct BatchInfo<'a> {
    pub source: &'a str,
    pub source_key: &'a str,
    pub read_time_us: i64,
    pub unterminated_offset: i64,
}

pub struct Columns {
    pub ts: NumCol<i64>,
    pub level: StrCol,
    pub message: StrCol,
    pub message_key: StrCol,
    pub logger: StrCol,
    pub service: StrCol,
    pub host: StrCol,
    /// Read back for the request context, so kept as text.
    pub request_id: TextCol,
    pub user_id: StrCol,
    pub session_id: StrCol,
    pub trace_id: StrCol,
    pub method: StrCol,
    pub endpoint: StrCol,
    pub path: StrCol,
    pub status: NumCol<i32>,
    pub duration_ms: NumCol<f64>,
    pub error: StrCol,
    pub attrs: StrCol,
    pub source: StrCol,
    pub offset: NumCol<i64>,
    pub event_id: StrCol,
}

impl Columns {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let small = || StrCol::with_capacity(rows, rows * 8);
        Columns {
            ts: NumCol::with_capacity(rows),
            level: StrCol::with_capacity(rows, rows * 5),
            message: StrCol::with_capacity(rows, bytes / 4),
            message_key: small(),
            logger: small(),
            service: small(),
            host: small(),
            request_id: TextCol::with_capacity(rows, rows * 8),
            user_id: small(),
            session_id: small(),
            trace_id: small(),
            method: small(),
            endpoint: small(),
            path: small(),
            status: NumCol::with_capacity(rows),
            duration_ms: NumCol::with_capacity(rows),
            error: small(),
            attrs: StrCol::with_capacity(rows, bytes / 2),
            source: small(),
            offset: NumCol::with_capacity(rows),
            event_id: StrCol::with_capacity(rows, rows * 24),
        }
    }
}

pub struct Reject {
    pub index: usize,
    pub reason: &'static str,
    pub detail: String,
}

pub struct Output {
    pub columns: Columns,
    pub rejects: Vec<Reject>,
    pub missing: Missing,
}

/// Records of a batch that gave a canonical field no usable value, so a default stands in:
/// a wrong `--format` (or a file without timestamps) shows here instead of shipping silently.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Missing {
    /// No timestamp that parses, nor a wrapper's: the reading time was used.
    pub ts: usize,
    /// No level that names one: INFO was assumed.
    pub level: usize,
    pub message: usize,
    /// Neither a timestamp (the record's or its wrapper's) nor a level: the profile matched
    /// nothing of the record.
    pub unmatched: usize,
}

/// What could not be read as its field wants, kept under `attrs._logpipe`.
#[derive(Default)]
struct Flags<'a> {
    ts: Option<&'static str>,
    ts_raw: Option<&'a str>,
    level_raw: Option<&'a str>,
    status_raw: Option<&'a str>,
    duration_raw: Option<&'a str>,
    unterminated: bool,
}

impl Flags<'_> {
    fn any(&self) -> bool {
        self.ts.is_some()
            || self.level_raw.is_some()
            || self.status_raw.is_some()
            || self.duration_raw.is_some()
            || self.unterminated
    }

    fn write(&self, out: &mut Vec<u8>, first: &mut bool) {
        let mut entry = |key: &str, value: &str, out: &mut Vec<u8>| {
            comma(out, first);
            json::write_string(out, key);
            out.push(b':');
            json::write_string(out, value);
        };
        if let Some(ts) = self.ts {
            entry("ts", ts, out);
        }
        for (key, value) in [
            ("ts_raw", self.ts_raw),
            ("level_raw", self.level_raw),
            ("status_raw", self.status_raw),
            ("duration_raw", self.duration_raw),
        ] {
            if let Some(v) = value {
                entry(key, v, out);
            }
        }
        if self.unterminated {
            comma(out, first);
            out.extend_from_slice(b"\"unterminated\":true");
        }
    }

    fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("ts", self.ts.is_some()),
            ("ts_raw", self.ts_raw.is_some()),
            ("level_raw", self.level_raw.is_some()),
            ("status_raw", self.status_raw.is_some()),
            ("duration_raw", self.duration_raw.is_some()),
            ("unterminated", self.unterminated),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
    }
}

#[inline]
fn comma(out: &mut Vec<u8>, first: &mut bool) {
    if !*first {
        out.push(b',');
    }
    *first = false;
}

fn write_member(out: &mut Vec<u8>, first: &mut bool, m: &Member<'_>) {
    comma(out, first);
    out.push(b'"');
    out.extend_from_slice(m.key_raw.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(m.value.as_bytes());
}

/// A value as the text a canonical string field holds: strings unescaped, other values as written.
fn text<'a>(slot: Slot<'a>) -> Option<Cow<'a, str>> {
    let (raw, kind) = slot?;
    match kind {
        Kind::Null => None,
        // Between its quotes (ASCII, so the cuts are char boundaries).
        Kind::String => Some(json::decode_string(&raw[1..raw.len() - 1])),
        _ => Some(Cow::Borrowed(raw)),
    }
}

/// A number in another unit, in the field's: times `scale`, kept to a millionth (so 0.1234 s is
/// 123.4 ms, not 123.39999999999999). A value that is no number stays as written (and is flagged
/// unreadable by its field, like any other).
fn scaled(value: Cow<'_, str>, scale: f64) -> Cow<'_, str> {
    if scale == 1.0 {
        return value;
    }
    match time::parse_f64(&value).map(|n| n * scale).filter(|n| n.is_finite()) {
        Some(n) if n.abs() < 1e12 => Cow::Owned(((n * 1e6).round() / 1e6).to_string()),
        Some(n) => Cow::Owned(n.to_string()),
        None => value,
    }
}

/// The member named `key` (keys are unique once the scanner resolved duplicates).
fn find<'a, 'm>(members: &'m [Member<'a>], key: &str) -> Option<&'m Member<'a>> {
    members.iter().find(|m| m.key() == key)
}

/// The object at `path` below `members`, as its members.
fn object_at<'a>(members: &[Member<'a>], path: &[String], stack: &mut Vec<u8>) -> Option<Vec<Member<'a>>> {
    let (head, rest) = path.split_first()?;
    let m = find(members, head)?;
    if m.kind != Kind::Object {
        return None;
    }
    let mut inner = Vec::new();
    json::members_of(m.value, &mut inner, stack);
    if rest.is_empty() {
        Some(inner)
    } else {
        object_at(&inner, rest, stack)
    }
}

/// Scratch space reused from line to line.
struct Scratch<'a> {
    members: Vec<Member<'a>>,
    stack: Vec<u8>,
    slots: Vec<Slot<'a>>,
}

impl Normaliser {
    pub fn new(spec: Spec) -> Normaliser {
        let mut trie = Trie { nodes: vec![Node::default()] };
        let mut first_slot = Vec::with_capacity(spec.fields.len());
        let mut consumes = Vec::new();
        let depth = spec.root.len();
        for field in &spec.fields {
            first_slot.push(consumes.len());
            for path in &field.paths {
                trie.insert(path, consumes.len());
                // Only a key read whole by a plain field leaves attrs: removing a nested key
                // could turn a scalar into an object, and combined fields use several keys.
                let consumable =
                    field.combine == Combine::First && path.len() == depth + 1 && path[..depth] == spec.root[..];
                consumes.push(consumable.then(|| path[depth].clone()));
            }
        }
        let slot_count = consumes.len();
        Normaliser { spec, trie, first_slot, slot_count, consumes }
    }

    fn walk<'a>(&self, node: usize, members: &[Member<'a>], slots: &mut [Slot<'a>], stack: &mut Vec<u8>) {
        let node = &self.trie.nodes[node];
        for m in members {
            let key = m.key();
            let Some(&child) = node.children.get(key.as_ref()) else { continue };
            let child_node = &self.trie.nodes[child];
            // Keys are unique in `members` (last-wins), so each slot is filled at most once.
            for &slot in &child_node.slots {
                slots[slot] = Some((m.value, m.kind));
            }
            if !child_node.children.is_empty() && m.kind == Kind::Object {
                let mut inner = Vec::new();
                json::members_of(m.value, &mut inner, stack);
                self.walk(child, &inner, slots, stack);
            }
        }
    }

    /// A field's value, and the slot it came from when that slot's key leaves attrs.
    fn field<'a>(&self, f: usize, slots: &[Slot<'a>]) -> (Option<Cow<'a, str>>, Option<usize>) {
        let spec = &self.spec.fields[f];
        let start = self.first_slot[f];
        let own = &slots[start..start + spec.paths.len()];
        let at = |i: usize| own.get(i).copied().flatten().and_then(|s| text(Some(s)));
        match spec.combine {
            Combine::First => {
                for (i, slot) in own.iter().enumerate() {
                    if let Some(value) = text(*slot) {
                        let scale = spec.scales.get(i).copied().unwrap_or(1.0);
                        return (Some(scaled(value, scale)), Some(start + i));
                    }
                }
                (None, None)
            }
            Combine::NanosToMillis => {
                let nanos = at(0).or_else(|| at(1)).and_then(|t| time::parse_f64(&t));
                (nanos.map(|n| Cow::Owned((n / 1e6).to_string())), None)
            }
            Combine::EcsError => {
                let stack = at(0).or_else(|| at(1));
                if stack.is_some() {
                    return (stack, None);
                }
                let parts: Vec<Cow<'_, str>> =
                    [at(2).or_else(|| at(3)), at(4).or_else(|| at(5))].into_iter().flatten().collect();
                let joined = parts.join(": ");
                ((!joined.is_empty()).then_some(Cow::Owned(joined)), None)
            }
            Combine::LoguruError => {
                let Some(kind) = at(0) else { return (None, None) };
                let mut s = kind.into_owned();
                if let Some(value) = at(1) {
                    s.push_str(": ");
                    s.push_str(&value);
                }
                s.push('\n');
                if let Some(rendered) = at(2) {
                    s.push_str(&rendered);
                }
                (Some(Cow::Owned(s)), None)
            }
        }
    }

    /// Normalise a batch of lines. `lines[i]` sits at byte `offsets[i]` of the source.
    ///
    /// Lines are bytes from the caller: each is checked to be UTF-8 here, at the entry, and one
    /// that is not becomes an `invalid_utf8` reject (as framing makes it), so everything after
    /// works on `str` and every value it copies out is text.
    pub fn run(
        &self,
        lines: &[&[u8]],
        offsets: &[i64],
        fallback_ts: &[Option<&str>],
        info: &BatchInfo<'_>,
        context: &mut ContextMap,
    ) -> Output {
        let bytes: usize = lines.iter().map(|l| l.len()).sum();
        let mut cols = Columns::with_capacity(lines.len(), bytes);
        let mut rejects = Vec::new();
        let mut own_user = TextCol::with_capacity(lines.len(), lines.len() * 8);
        let mut own_session = TextCol::with_capacity(lines.len(), lines.len() * 8);
        let mut scratch = Scratch {
            members: Vec::with_capacity(32),
            stack: Vec::with_capacity(64),
            slots: vec![None; self.slot_count],
        };
        let mut missing = Missing::default();
        for (i, line) in lines.iter().enumerate() {
            let fallback = fallback_ts.get(i).copied().flatten();
            let line = match std::str::from_utf8(line) {
                Ok(text) => text,
                Err(e) => {
                    let detail = framing::utf8_detail(&e);
                    rejects.push(Reject { index: i, reason: "invalid_utf8", detail });
                    continue;
                }
            };
            match json::parse_line(line, &mut scratch.members, &mut scratch.stack) {
                Ok(()) => {
                    let gaps = self.record(
                        &mut scratch,
                        offsets[i],
                        fallback,
                        info,
                        &mut cols,
                        &mut own_user,
                        &mut own_session,
                    );
                    missing.ts += usize::from(gaps.ts);
                    missing.level += usize::from(gaps.level);
                    missing.message += usize::from(gaps.message);
                    missing.unmatched += usize::from(gaps.unmatched);
                }
                Err(LineError::Blank) => {}
                Err(LineError::Reject { reason, detail }) => rejects.push(Reject { index: i, reason, detail }),
            }
        }
        fill_context(&mut cols, &own_user, &own_session, context, info.read_time_us);
        Output { columns: cols, rejects, missing }
    }

    /// Append one record to the columns; returns which of its fields stood in for missing ones.
    #[allow(clippy::too_many_arguments)]
    fn record<'a>(
        &self,
        s: &mut Scratch<'a>,
        offset: i64,
        fallback: Option<&str>,
        info: &BatchInfo<'_>,
        c: &mut Columns,
        own_user: &mut TextCol,
        own_session: &mut TextCol,
    ) -> Gaps {
        s.slots.iter_mut().for_each(|slot| *slot = None);
        let members = std::mem::take(&mut s.members);
        self.walk(0, &members, &mut s.slots, &mut s.stack);

        // At most one key a field (no allocation: this runs once per record).
        let mut consumed: [&str; FIELD_COUNT] = [""; FIELD_COUNT];
        let mut consumed_count = 0;
        let mut values: [Option<Cow<'a, str>>; FIELD_COUNT] = Default::default();
        for (f, value) in values.iter_mut().enumerate() {
            let (v, slot) = self.field(f, &s.slots);
            *value = v;
            if let Some(key) = slot.and_then(|i| self.consumes[i].as_deref()) {
                consumed[consumed_count] = key;
                consumed_count += 1;
            }
        }
        let mut flags = Flags::default();

        let ts_raw = values[TS].as_deref();
        let ts = match ts_raw.and_then(time::parse_ts) {
            Some(us) => us,
            None => {
                flags.ts_raw = ts_raw;
                match fallback.and_then(time::parse_iso) {
                    Some(us) => {
                        flags.ts = Some("wrapper_time");
                        us
                    }
                    None => {
                        flags.ts = Some("read_time");
                        info.read_time_us
                    }
                }
            }
        };
        let level_raw = values[LEVEL].as_deref();
        let mapped = level_raw.and_then(|raw| self.spec.levels.map(raw));
        if mapped.is_none() {
            flags.level_raw = level_raw;
        }
        let level = mapped.unwrap_or(INFO);
        let status_raw = values[STATUS].as_deref();
        let status = status_raw.and_then(|raw| {
            let d = time::parse_f64(raw)?.round_ties_even();
            (d >= f64::from(i32::MIN) && d <= f64::from(i32::MAX)).then_some(d as i32)
        });
        if status.is_none() {
            flags.status_raw = status_raw;
        }
        let duration_raw = values[DURATION].as_deref();
        let duration = duration_raw.and_then(time::parse_f64).filter(|d| d.is_finite());
        if duration.is_none() {
            flags.duration_raw = duration_raw;
        }
        flags.unterminated = offset == info.unterminated_offset;

        c.ts.push(Some(ts));
        c.level.push(Some(LEVELS[level as usize]));
        let message = values[MESSAGE].as_deref();
        c.message.push(message);
        match message {
            Some(m) if level >= WARNING => {
                masks::message_key(m, &mut c.message_key.data);
                c.message_key.end_value();
            }
            _ => c.message_key.push_null(),
        }
        c.logger.push(values[LOGGER].as_deref());
        c.service.push(values[SERVICE].as_deref().or(self.spec.label_service.as_deref()));
        c.host.push(values[HOST].as_deref().or(self.spec.label_host.as_deref()));
        c.request_id.push(values[REQUEST_ID].as_deref());
        own_user.push(values[USER_ID].as_deref());
        own_session.push(values[SESSION_ID].as_deref());
        c.trace_id.push(values[TRACE_ID].as_deref());
        match values[METHOD].as_deref() {
            Some(m) if m.bytes().any(|b| !b.is_ascii_uppercase()) => c.method.push(Some(&m.to_uppercase())),
            other => c.method.push(other),
        }
        let path = values[PATH].as_deref();
        match path {
            Some(p) => {
                masks::endpoint(p, &mut c.endpoint.data);
                c.endpoint.end_value();
            }
            None => c.endpoint.push_null(),
        }
        c.path.push(path);
        c.status.push(status);
        c.duration_ms.push(duration);
        c.error.push(values[ERROR].as_deref());
        self.write_attrs(&members, &consumed[..consumed_count], &flags, &mut s.stack, &mut c.attrs.data);
        c.attrs.end_value();
        c.source.push(Some(info.source));
        let id = &mut c.event_id.data;
        id.extend_from_slice(info.source_key.as_bytes());
        id.push(b':');
        write_decimal(id, offset);
        c.event_id.end_value();
        c.offset.push(Some(offset));
        s.members = members;
        let no_ts = flags.ts == Some("read_time");
        Gaps { ts: no_ts, level: mapped.is_none(), message: message.is_none(), unmatched: no_ts && mapped.is_none() }
    }

    /// `attrs`: lifted members, then the root's members minus what fields consumed, then labels
    /// the record lacks, then `_logpipe` flags (merged into a `_logpipe` object already there).
    fn write_attrs(
        &self,
        top: &[Member<'_>],
        consumed: &[&str],
        flags: &Flags<'_>,
        stack: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) {
        let spec = &self.spec;
        let nested_root;
        let root: &[Member<'_>] = if spec.root.is_empty() {
            top
        } else {
            nested_root = object_at(top, &spec.root, stack);
            nested_root.as_deref().unwrap_or(top)
        };
        // A root member stays in attrs unless a field read its key (or the profile always drops it).
        let kept = |key: &str| !consumed.contains(&key) && !spec.always_consumed.iter().any(|c| c == key);
        let root_keeps = |key: &str| kept(key) && root.iter().any(|m| m.key() == key);
        let mut first = true;
        let mut old_flags: Option<Member<'_>> = None;
        let with_flags = flags.any();
        let mut written: Vec<Cow<'_, str>> = Vec::new();
        out.push(b'{');
        for lift in &spec.lifts {
            let Some(lifted) = object_at(top, &lift.path, stack) else { continue };
            for m in &lifted {
                let key = m.key();
                if lift.drop.iter().any(|d| *d == key) || root_keeps(&key) {
                    continue;
                }
                if with_flags && key == "_logpipe" {
                    old_flags = Some(*m);
                    continue;
                }
                write_member(out, &mut first, m);
                written.push(key);
            }
        }
        for m in root {
            let key = m.key();
            if !kept(&key) {
                continue;
            }
            if with_flags && key == "_logpipe" {
                old_flags = Some(*m);
                continue;
            }
            write_member(out, &mut first, m);
        }
        for (key, value) in &spec.extra_labels {
            if root_keeps(key) || written.iter().any(|k| k == key) {
                continue;
            }
            comma(out, &mut first);
            json::write_string(out, key);
            out.push(b':');
            json::write_string(out, value);
        }
        if with_flags {
            comma(out, &mut first);
            out.extend_from_slice(b"\"_logpipe\":{");
            let mut inner_first = true;
            if let Some(old) = old_flags.filter(|m| m.kind == Kind::Object) {
                let mut inner = Vec::new();
                json::members_of(old.value, &mut inner, stack);
                for m in &inner {
                    let key = m.key();
                    if !flags.keys().any(|k| k == key) {
                        write_member(out, &mut inner_first, m);
                    }
                }
            }
            flags.write(out, &mut inner_first);
            out.push(b'}');
        }
        out.push(b'}');
    }
}

/// Append `n` in decimal (no allocation: this runs once per record).
fn write_decimal(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Which fields of one record had no usable value (see `Missing`).
struct Gaps {
    ts: bool,
    level: bool,
    message: bool,
    unmatched: bool,
}

/// user_id and session_id: the record's own, else the request's from earlier batches, else the
/// first one named by a record of the same request in this batch. Then remember this batch's.
fn fill_context(c: &mut Columns, own_user: &TextCol, own_session: &TextCol, context: &mut ContextMap, now_us: i64) {
    let rows = c.request_id.len();
    let mut first: HashMap<&str, (Option<&str>, Option<&str>)> = HashMap::default();
    for i in 0..rows {
        let Some(req) = c.request_id.get(i) else { continue };
        let entry = first.entry(req).or_insert((None, None));
        if entry.0.is_none() {
            entry.0 = own_user.get(i);
        }
        if entry.1.is_none() {
            entry.1 = own_session.get(i);
        }
    }
    for i in 0..rows {
        let req = c.request_id.get(i);
        let known = req.and_then(|r| context.get(r));
        let batch = req.and_then(|r| first.get(r));
        let user = own_user.get(i).or_else(|| known.and_then(|e| e.user_id())).or_else(|| batch.and_then(|b| b.0));
        let session =
            own_session.get(i).or_else(|| known.and_then(|e| e.session_id())).or_else(|| batch.and_then(|b| b.1));
        c.user_id.push(user);
        c.session_id.push(session);
    }
    for (req, (user, session)) in first {
        context.remember(req, user, session, now_us);
    }
    context.evict(now_us);
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ_US: i64 = 1_700_000_000_000_000;
    const TS_US: i64 = 1_795_168_800_000_000; // 2026-11-20T10:00:00Z

    fn first(paths: &[&str]) -> FieldSpec {
        FieldSpec {
            paths: paths.iter().map(|p| p.split('.').map(String::from).collect()).collect(),
            combine: Combine::First,
            scales: vec![],
        }
    }

    fn levels(scheme: Scheme) -> Levels {
        let names = [("info", 2u8), ("warn", 3), ("warning", 3), ("error", 4), ("fatal", 5)];
        Levels {
            scheme,
            names: names.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            pino: [0, 1, 2, 3, 4, 5],
            python: [0, 1, 2, 3, 4, 5],
            syslog: [5, 5, 5, 4, 3, 2, 2, 1],
        }
    }

    /// A python-json-logger-like profile, in FIELDS order.
    fn spec() -> Spec {
        Spec {
            fields: vec![
                first(&["timestamp", "time"]),
                first(&["level", "levelname"]),
                first(&["message", "msg"]),
                first(&["logger"]),
                first(&["service"]),
                first(&["host"]),
                first(&["request_id"]),
                first(&["user_id"]),
                first(&["session_id"]),
                first(&["trace_id"]),
                first(&["method"]),
                first(&["path"]),
                first(&["status"]),
                first(&["duration_ms"]),
                first(&["error"]),
            ],
            root: vec![],
            lifts: vec![],
            always_consumed: vec![],
            levels: levels(Scheme::Auto),
            label_service: None,
            label_host: None,
            extra_labels: vec![],
        }
    }

    fn info() -> BatchInfo<'static> {
        BatchInfo { source: "/var/log/app.log", source_key: "k", read_time_us: READ_US, unterminated_offset: -1 }
    }

    fn run_with(n: &Normaliser, lines: &[&[u8]], fallback: &[Option<&str>], ctx: &mut ContextMap) -> Output {
        let offsets: Vec<i64> = (0..lines.len() as i64).map(|i| i * 100).collect();
        n.run(lines, &offsets, fallback, &info(), ctx)
    }

    fn run(spec: Spec, lines: &[&str]) -> Output {
        let bytes: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        run_with(&Normaliser::new(spec), &bytes, &[], &mut ContextMap::new(100, 3_600_000_000))
    }

    fn cell(col: &StrCol, i: usize) -> Option<String> {
        col.validity.is_valid(i).then(|| {
            let (a, b) = (col.offsets[i] as usize, col.offsets[i + 1] as usize);
            String::from_utf8(col.data[a..b].to_vec()).expect("columns hold text")
        })
    }

    fn num<T: Copy>(col: &NumCol<T>, i: usize) -> Option<T> {
        col.validity.is_valid(i).then(|| col.values[i])
    }

    fn reasons(out: &Output) -> Vec<(usize, &'static str)> {
        out.rejects.iter().map(|r| (r.index, r.reason)).collect()
    }

    #[test]
    fn fields_come_from_their_first_present_path_and_the_rest_stays_in_attrs_verbatim() {
        let out = run(
            spec(),
            &[
                r#"{"time":"2026-11-20T10:00:00Z","levelname":"error","msg":"disk 93% full","logger":"app","n":[1, 2.50],"k":{"a" : null}}"#,
            ],
        );
        let c = &out.columns;
        assert_eq!(num(&c.ts, 0), Some(TS_US));
        assert_eq!(cell(&c.level, 0).as_deref(), Some("ERROR"));
        assert_eq!(cell(&c.message, 0).as_deref(), Some("disk 93% full"));
        assert_eq!(cell(&c.logger, 0).as_deref(), Some("app"));
        // Members nobody read are copied byte for byte (spacing and number text kept).
        assert_eq!(cell(&c.attrs, 0).as_deref(), Some(r#"{"n":[1, 2.50],"k":{"a" : null}}"#));
        assert_eq!(cell(&c.source, 0).as_deref(), Some("/var/log/app.log"));
        assert_eq!((cell(&c.event_id, 0).as_deref(), num(&c.offset, 0)), (Some("k:0"), Some(0)));
        assert_eq!(out.missing, Missing::default());
        assert!(out.rejects.is_empty());
    }

    #[test]
    fn a_line_that_is_not_utf8_is_rejected_at_the_entry_and_the_others_keep_their_places() {
        let lines: [&[u8]; 3] = [br#"{"msg":"a"}"#, b"{\"msg\":\"caf\xe9\"}", br#"{"msg":"c"}"#];
        let out = run_with(&Normaliser::new(spec()), &lines, &[], &mut ContextMap::new(10, 1));
        assert_eq!(reasons(&out), [(1, "invalid_utf8")]);
        assert_eq!(out.rejects[0].detail, "invalid UTF-8 at byte 11 of the line");
        let c = &out.columns;
        assert_eq!((c.offset.values.as_slice(), c.message.len()), (&[0, 200][..], 2));
        assert_eq!((cell(&c.message, 0).as_deref(), cell(&c.message, 1).as_deref()), (Some("a"), Some("c")));
    }

    #[test]
    fn json_rejects_carry_their_line_index_and_blank_lines_are_neither_row_nor_reject() {
        let out = run(spec(), &["not json", "[1]", " \t", r#"{"a":NaN}"#, r#"{"msg":"ok"}"#]);
        assert_eq!(reasons(&out), [(0, "invalid_json"), (1, "not_an_object"), (3, "non_finite_number")]);
        assert_eq!(
            (out.columns.offset.values.as_slice(), cell(&out.columns.message, 0)),
            (&[400][..], Some("ok".into()))
        );
    }

    #[test]
    fn defaults_stand_in_for_what_is_missing_and_say_so_under_logpipe() {
        let lines: [&[u8]; 3] =
            [br#"{"level":"loud","ts_note":1}"#, br#"{"timestamp":"yesterday"}"#, br#"{"msg":"m","level":"info"}"#];
        let fallback = [None, Some("2026-11-20T10:00:00Z"), None];
        let out = run_with(&Normaliser::new(spec()), &lines, &fallback, &mut ContextMap::new(10, 1));
        let c = &out.columns;
        assert_eq!((num(&c.ts, 0), num(&c.ts, 1), num(&c.ts, 2)), (Some(READ_US), Some(TS_US), Some(READ_US)));
        assert_eq!(cell(&c.level, 0).as_deref(), Some("INFO"));
        assert_eq!(
            cell(&c.attrs, 0).as_deref(),
            Some(r#"{"ts_note":1,"_logpipe":{"ts":"read_time","level_raw":"loud"}}"#)
        );
        assert_eq!(cell(&c.attrs, 1).as_deref(), Some(r#"{"_logpipe":{"ts":"wrapper_time","ts_raw":"yesterday"}}"#));
        assert_eq!(cell(&c.attrs, 2).as_deref(), Some(r#"{"_logpipe":{"ts":"read_time"}}"#));
        // Line 0: neither ts nor a level that names one (unmatched); line 1: wrapper time, no
        // level; line 2: no ts.
        assert_eq!(out.missing, Missing { ts: 2, level: 2, message: 2, unmatched: 1 });
        let none = run(spec(), &[r#"{"x":1}"#]);
        assert_eq!(none.missing, Missing { ts: 1, level: 1, message: 1, unmatched: 1 });
    }

    #[test]
    fn a_logpipe_object_already_there_is_merged_with_the_flags() {
        let out =
            run(spec(), &[r#"{"timestamp":"2026-11-20T10:00:00Z","level":"x","_logpipe":{"level_raw":"old","k":1}}"#]);
        assert_eq!(cell(&out.columns.attrs, 0).as_deref(), Some(r#"{"_logpipe":{"k":1,"level_raw":"x"}}"#));
        let clean = run(spec(), &[r#"{"timestamp":"2026-11-20T10:00:00Z","level":"info","_logpipe":{"k":1}}"#]);
        assert_eq!(cell(&clean.columns.attrs, 0).as_deref(), Some(r#"{"_logpipe":{"k":1}}"#));
    }

    #[test]
    fn levels_by_name_number_and_scheme() {
        let auto = Normaliser::new(spec());
        let map = |n: &Normaliser, raw: &str| n.spec.levels.map(raw).map(|i| LEVELS[i as usize]);
        for (raw, want) in [
            ("ERROR", Some("ERROR")),
            ("Warn", Some("WARNING")),
            (" fatal ", Some("CRITICAL")),
            ("3", Some("ERROR")), // syslog err under auto (0..7)
            ("30", Some("INFO")), // pino info under auto (larger numbers)
            ("50.2", Some("ERROR")),
            ("loud", None),
        ] {
            assert_eq!(map(&auto, raw), want, "{raw}");
        }
        let python = Normaliser::new(Spec { levels: levels(Scheme::Python), ..spec() });
        assert_eq!((map(&python, "3"), map(&python, "40")), (Some("TRACE"), Some("ERROR")));
        let syslog = Normaliser::new(Spec { levels: levels(Scheme::Syslog), ..spec() });
        assert_eq!(map(&syslog, "30"), Some("DEBUG")); // clamped to 7
    }

    #[test]
    fn numbers_are_coerced_and_what_does_not_fit_is_kept_raw() {
        let out = run(
            spec(),
            &[
                r#"{"status":"200","duration_ms":"12.5"}"#,
                r#"{"status":404.5,"duration_ms":3}"#,
                r#"{"status":"teapot","duration_ms":"fast"}"#,
                r#"{"status":1e12}"#,
            ],
        );
        let c = &out.columns;
        let status: Vec<Option<i32>> = (0..4).map(|i| num(&c.status, i)).collect();
        assert_eq!(status, [Some(200), Some(404), None, None]); // 404.5 rounds half to even
        let duration: Vec<Option<f64>> = (0..4).map(|i| num(&c.duration_ms, i)).collect();
        assert_eq!(duration, [Some(12.5), Some(3.0), None, None]);
        assert!(cell(&c.attrs, 2).unwrap().contains(r#""status_raw":"teapot","duration_raw":"fast""#));
        assert!(cell(&c.attrs, 3).unwrap().contains(r#""status_raw":"1e12""#));
    }

    #[test]
    fn a_path_with_a_scale_gives_the_field_its_unit_and_text_stays_unreadable() {
        let mut seconds = spec();
        seconds.fields[DURATION] = FieldSpec { scales: vec![1.0, 1000.0], ..first(&["duration_ms", "duration_s"]) };
        let out = run(
            seconds,
            &[
                r#"{"duration_s":0.1234}"#,
                r#"{"duration_s":"2"}"#,
                r#"{"duration_ms":5,"duration_s":9}"#,
                r#"{"duration_s":"1.5s"}"#,
            ],
        );
        let c = &out.columns;
        let duration: Vec<Option<f64>> = (0..4).map(|i| num(&c.duration_ms, i)).collect();
        assert_eq!(duration, [Some(123.4), Some(2000.0), Some(5.0), None]);
        assert_eq!(cell(&c.attrs, 2).as_deref(), Some(r#"{"duration_s":9,"_logpipe":{"ts":"read_time"}}"#));
        assert!(cell(&c.attrs, 3).unwrap().contains(r#""duration_raw":"1.5s""#));
    }

    #[test]
    fn message_keys_from_warning_up_methods_upper_case_and_endpoint_templates() {
        let out = run(
            spec(),
            &[
                r#"{"level":"info","msg":"user 41 ok","method":"get","path":"/api/users/42?x=1"}"#,
                r#"{"level":"warning","msg":"user 41 failed","method":"POST"}"#,
            ],
        );
        let c = &out.columns;
        assert_eq!((cell(&c.message_key, 0), cell(&c.message_key, 1).as_deref()), (None, Some("user <*> failed")));
        assert_eq!((cell(&c.method, 0).as_deref(), cell(&c.method, 1).as_deref()), (Some("GET"), Some("POST")));
        assert_eq!((cell(&c.endpoint, 0).as_deref(), cell(&c.endpoint, 1)), (Some("/api/users/{id}"), None));
        assert_eq!(cell(&c.path, 0).as_deref(), Some("/api/users/42?x=1"));
    }

    #[test]
    fn duplicate_keys_are_last_wins_escapes_decode_and_non_strings_keep_their_text() {
        let out = run(
            spec(),
            &[r#"{"msg":"first","msg":"a\n\u00e9","x":1,"x":{"y":2},"mess\u0061ge":"z","logger":17,"error":{"e":1}}"#],
        );
        let c = &out.columns;
        // `message` outranks `msg`, and its key was written escaped.
        assert_eq!(cell(&c.message, 0).as_deref(), Some("z"));
        assert_eq!(cell(&c.logger, 0).as_deref(), Some("17"));
        assert_eq!(cell(&c.error, 0).as_deref(), Some(r#"{"e":1}"#));
        // `msg` was not the alias used, so it stays, with its last value, at its first place.
        assert_eq!(
            cell(&c.attrs, 0).as_deref(),
            Some(r#"{"msg":"a\n\u00e9","x":{"y":2},"_logpipe":{"ts":"read_time"}}"#)
        );
    }

    #[test]
    fn request_context_fills_later_lines_of_the_batch_and_later_batches() {
        let n = Normaliser::new(spec());
        let mut ctx = ContextMap::new(100, 3_600_000_000);
        let batch1: [&[u8]; 3] = [
            br#"{"request_id":"r1","msg":"no user yet"}"#,
            br#"{"request_id":"r1","user_id":"u1","session_id":"s1"}"#,
            br#"{"request_id":"r2","user_id":"u2"}"#,
        ];
        let out = run_with(&n, &batch1, &[], &mut ctx);
        let c = &out.columns;
        // The first user named by the request in the batch fills its other lines, earlier ones too.
        assert_eq!((cell(&c.user_id, 0).as_deref(), cell(&c.session_id, 0).as_deref()), (Some("u1"), Some("s1")));
        assert_eq!((cell(&c.user_id, 2).as_deref(), cell(&c.session_id, 2)), (Some("u2"), None));
        assert_eq!(ctx.len(), 2);
        let batch2: [&[u8]; 3] =
            [br#"{"request_id":"r1"}"#, br#"{"request_id":"r1","user_id":"own"}"#, br#"{"request_id":"r3"}"#];
        let out = run_with(&n, &batch2, &[], &mut ctx);
        let c = &out.columns;
        let users: Vec<Option<String>> = (0..3).map(|i| cell(&c.user_id, i)).collect();
        assert_eq!(users, [Some("u1".into()), Some("own".into()), None]);
        assert_eq!(c.request_id.get(2), Some("r3"));
    }

    #[test]
    fn labels_fill_service_and_host_and_others_go_to_attrs_unless_the_record_has_them() {
        let labelled = Spec {
            label_service: Some("svc".into()),
            label_host: Some("h1".into()),
            extra_labels: vec![("env".into(), "prod".into()), ("team".into(), "a\"b".into())],
            ..spec()
        };
        let out = run(labelled, &[r#"{"host":"own","team":"x"}"#]);
        let c = &out.columns;
        assert_eq!((cell(&c.service, 0).as_deref(), cell(&c.host, 0).as_deref()), (Some("svc"), Some("own")));
        assert_eq!(cell(&c.attrs, 0).as_deref(), Some(r#"{"team":"x","env":"prod","_logpipe":{"ts":"read_time"}}"#));
    }

    #[test]
    fn a_nested_root_with_a_lifted_object_like_loguru() {
        let path = |p: &str| p.split('.').map(String::from).collect::<Vec<_>>();
        let mut loguru = spec();
        loguru.fields[TS] = first(&["record.time.timestamp"]);
        loguru.fields[LEVEL] = first(&["record.level.name"]);
        loguru.fields[MESSAGE] = first(&["record.message"]);
        loguru.fields[REQUEST_ID] = first(&["record.extra.request_id"]);
        loguru.fields[ERROR] = FieldSpec {
            paths: vec![path("record.exception.type"), path("record.exception.value"), path("text")],
            combine: Combine::LoguruError,
            scales: vec![],
        };
        loguru.root = path("record");
        loguru.lifts = vec![Lift { path: path("record.extra"), drop: vec!["request_id".into()] }];
        loguru.always_consumed = vec!["exception".into(), "extra".into(), "level".into(), "time".into()];
        let out = run(
            loguru,
            &[concat!(
                r#"{"text":"boom\n","record":{"time":{"timestamp":1795168800.0},"level":{"name":"ERROR"},"#,
                r#""message":"m","extra":{"request_id":"r","k":1},"exception":{"type":"ValueError","value":"bad"},"#,
                r#""line":7}}"#
            )],
        );
        let c = &out.columns;
        assert_eq!((num(&c.ts, 0), cell(&c.level, 0).as_deref()), (Some(TS_US), Some("ERROR")));
        assert_eq!(c.request_id.get(0), Some("r"));
        assert_eq!(cell(&c.error, 0).as_deref(), Some("ValueError: bad\nboom\n"));
        assert_eq!(cell(&c.attrs, 0).as_deref(), Some(r#"{"k":1,"line":7}"#));
    }

    #[test]
    fn combined_fields_ecs_duration_and_error() {
        let path = |p: &str| p.split('.').map(String::from).collect::<Vec<_>>();
        let mut ecs = spec();
        ecs.fields[DURATION] = FieldSpec {
            paths: vec![vec!["event.duration".into()], path("event.duration")],
            combine: Combine::NanosToMillis,
            scales: vec![],
        };
        ecs.fields[ERROR] = FieldSpec {
            paths: ["error.stack_trace", "error.type", "error.message"]
                .iter()
                .flat_map(|p| [vec![p.to_string()], path(p)])
                .collect(),
            combine: Combine::EcsError,
            scales: vec![],
        };
        let out = run(
            ecs,
            &[
                r#"{"event":{"duration":1500000},"error":{"type":"IOError","message":"gone"}}"#,
                r#"{"event.duration":"2e6","error.stack_trace":"trace","error.type":"X"}"#,
                r#"{"error":{"message":"only"}}"#,
            ],
        );
        let c = &out.columns;
        assert_eq!(
            (num(&c.duration_ms, 0), num(&c.duration_ms, 1), num(&c.duration_ms, 2)),
            (Some(1.5), Some(2.0), None)
        );
        let errors: Vec<Option<String>> = (0..3).map(|i| cell(&c.error, i)).collect();
        assert_eq!(errors, [Some("IOError: gone".into()), Some("trace".into()), Some("only".into())]);
        // Combined fields consume no key: the members stay in attrs.
        assert!(cell(&c.attrs, 0).unwrap().starts_with(r#"{"event":{"duration":1500000},"error":"#));
    }

    #[test]
    fn the_unterminated_line_is_flagged_and_event_ids_name_the_offset() {
        let n = Normaliser::new(spec());
        let lines: [&[u8]; 2] = [br#"{"level":"info","timestamp":"2026-11-20T10:00:00Z"}"#, br#"{"level":"info"}"#];
        let batch = BatchInfo { unterminated_offset: 7, ..info() };
        let out = n.run(&lines, &[-3, 7], &[], &batch, &mut ContextMap::new(10, 1));
        let c = &out.columns;
        assert_eq!(cell(&c.attrs, 0).as_deref(), Some("{}"));
        assert_eq!(cell(&c.attrs, 1).as_deref(), Some(r#"{"_logpipe":{"ts":"read_time","unterminated":true}}"#));
        assert_eq!((cell(&c.event_id, 0).as_deref(), cell(&c.event_id, 1).as_deref()), (Some("k:-3"), Some("k:7")));
    }

    #[test]
    fn decimal_writing_covers_the_extremes() {
        for n in [0, 7, -1, 1_234_567_890, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_decimal(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }
}
