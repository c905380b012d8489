//! `logpipe._native`: the normaliser, from framed JSON lines to canonical record columns.
//!
//! Python frames the lines and assembles Arrow arrays; this module does the per-line work
//! (validate, read fields, parse times and levels, mask ids, build attrs, fill request context)
//! without the GIL, and hands back Arrow-layout buffers.
//!
//! The boundary: buffers from Python are borrowed only when read-only (writable ones are copied
//! first, see `Bytes`), lines are checked to be UTF-8 where normalising starts (`normalise::run`),
//! and line cuts are checked against the data before anything is sliced. Every `unsafe` block
//! says why it holds (`// SAFETY:`), which clippy enforces.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::collections::HashMap;
use std::ops::Range;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

pub mod columns;
pub mod context;
pub mod framing;
pub mod json;
pub mod masks;
pub mod normalise;
pub mod textindex;
pub mod time;

use columns::{as_bytes, NumCol, StrCol};
use normalise::{BatchInfo, Combine, FieldSpec, Levels, Lift, Scheme, Spec, FIELD_COUNT, LEVELS};

/// The request-context map shared by the normalisers of one pipeline.
#[pyclass(module = "logpipe._native")]
struct Context {
    map: context::ContextMap,
}

#[pymethods]
impl Context {
    #[new]
    fn new(max_entries: usize, max_age_s: i64) -> Self {
        Context { map: context::ContextMap::new(max_entries, max_age_s.saturating_mul(1_000_000)) }
    }

    fn __len__(&self) -> usize {
        self.map.len()
    }

    /// Forget every request and give the memory back.
    fn clear(&mut self) {
        self.map.clear();
    }
}

/// The bytes of a buffer-protocol argument (Arrow buffers and numpy arrays say their bytes are
/// signed, `bytes` says unsigned), or of a part of it, as the native code reads them with the
/// GIL released.
///
/// A read-only buffer is borrowed: it stays exported, so alive and unmoved, while this value
/// lives, and nothing writes through a read-only view. A writable one (a `bytearray`, a
/// writable `memoryview`, an Arrow buffer fresh from a compute kernel) could be changed by
/// another Python thread while the GIL is released, which would be a data race, and could turn
/// checked UTF-8 into unchecked bytes halfway through: the part needed is copied first, while
/// the GIL is held. A buffer that is not C-contiguous is refused.
struct Bytes {
    held: Held,
    /// The part of the held bytes in use.
    part: Range<usize>,
}

enum Held {
    Signed(PyBuffer<i8>),
    Unsigned(PyBuffer<u8>),
    Copied(Vec<u8>),
}

impl Bytes {
    fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        Self::get_part(obj, |len| Ok(0..len))
    }

    /// The bytes `part` picks, given the buffer's length (a range within it, or an error).
    fn get_part(obj: &Bound<'_, PyAny>, part: impl FnOnce(usize) -> PyResult<Range<usize>>) -> PyResult<Self> {
        match PyBuffer::<u8>::get(obj) {
            Ok(b) => Self::hold(b, Held::Unsigned, part),
            Err(_) => Self::hold(PyBuffer::<i8>::get(obj)?, Held::Signed, part),
        }
    }

    fn hold<T: pyo3::buffer::Element>(
        buffer: PyBuffer<T>,
        borrow: fn(PyBuffer<T>) -> Held,
        part: impl FnOnce(usize) -> PyResult<Range<usize>>,
    ) -> PyResult<Self> {
        if !buffer.is_c_contiguous() {
            return Err(PyValueError::new_err("buffer must be contiguous"));
        }
        // Items are one byte (u8 or i8), so byte ranges are item ranges.
        let len = buffer.len_bytes();
        let part = part(len)?;
        if part.start > part.end || part.end > len {
            return Err(PyValueError::new_err("buffer range out of bounds"));
        }
        if buffer.readonly() {
            return Ok(Bytes { held: borrow(buffer), part });
        }
        let mut copy: Vec<u8> = Vec::with_capacity(part.len());
        if !part.is_empty() {
            // SAFETY: the buffer is C-contiguous and `len` bytes long with `part` inside it, so
            // `part.len()` bytes from `buf_ptr + part.start` are its initialised memory, and the
            // export held by `buffer` keeps them alive. The GIL is held and nothing here calls
            // into Python, so no Python code can write them during the copy (the guarantee
            // PyBuffer_ToContiguous, which pyo3's `to_vec` uses, relies on too). The copy goes to
            // the fresh, unaliased capacity of `copy`, and exactly `part.len()` bytes of it are
            // then initialised. Items are one byte (u8 or i8), so the byte copy is their value.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    buffer.buf_ptr().cast::<u8>().add(part.start),
                    copy.as_mut_ptr(),
                    part.len(),
                );
                copy.set_len(part.len());
            }
        }
        Ok(Bytes { part: 0..copy.len(), held: Held::Copied(copy) })
    }

    fn slice(&self) -> &[u8] {
        let (ptr, len) = match &self.held {
            Held::Signed(b) => (b.buf_ptr().cast::<u8>(), b.len_bytes()),
            Held::Unsigned(b) => (b.buf_ptr().cast::<u8>(), b.len_bytes()),
            Held::Copied(v) => return &v[self.part.clone()],
        };
        if len == 0 {
            return &[];
        }
        // SAFETY: `hold` kept only read-only, C-contiguous buffers of one-byte items, so `len`
        // bytes from `ptr` are the buffer's whole memory, initialised (the exporter filled it)
        // and non-null (len > 0). The `PyBuffer` in `self` keeps the export, so the memory stays
        // alive and unmoved for as long as the returned slice borrows `self`. Read-only: no
        // Python code can write through any view of it; what is left is the exporter's own
        // promise not to change memory it exported read-only (`bytes`, our `Buffer` and Arrow's
        // immutable buffers keep it), the contract every consumer of the buffer protocol relies
        // on. u8 has alignment 1.
        let whole = unsafe { std::slice::from_raw_parts(ptr, len) };
        &whole[self.part.clone()]
    }
}

/// Little-endian int64s (an Arrow int64 buffer, numpy's `tobytes()`); refused unless whole.
fn read_i64s(bytes: &[u8], what: &str) -> PyResult<Vec<i64>> {
    if !bytes.len().is_multiple_of(8) {
        return Err(PyValueError::new_err(format!("{what} must be int64s ({} bytes)", bytes.len())));
    }
    Ok(bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default())).collect())
}

/// The byte range of each line in a buffer of `len` bytes, from n+1 cuts: the cuts must start
/// at or after 0, never go back, and end within the buffer, checked here before any slicing.
fn line_ranges(cuts: &[i64], len: usize) -> Option<Vec<Range<usize>>> {
    let ends: Vec<usize> = cuts.iter().map(|&c| usize::try_from(c).ok()).collect::<Option<_>>()?;
    if ends.last().is_some_and(|&end| end > len) || ends.windows(2).any(|w| w[0] > w[1]) {
        return None;
    }
    Some(ends.windows(2).map(|w| w[0]..w[1]).collect())
}

fn level_index(name: &str) -> PyResult<u8> {
    LEVELS
        .iter()
        .position(|l| *l == name)
        .map(|i| i as u8)
        .ok_or_else(|| PyValueError::new_err(format!("unknown level {name:?}")))
}

fn numeric_table<const N: usize>(numeric: &HashMap<String, String>, scheme: &str, first: usize) -> PyResult<[u8; N]> {
    let mut table = [0u8; N];
    for (i, slot) in table.iter_mut().enumerate() {
        let key = format!("{scheme}:{}", i + first);
        let name = numeric.get(&key).ok_or_else(|| PyValueError::new_err(format!("missing level {key}")))?;
        *slot = level_index(name)?;
    }
    Ok(table)
}

#[pyclass(module = "logpipe._native", frozen)]
struct Normaliser {
    inner: normalise::Normaliser,
}

enum Owned {
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// Memory built here and handed to Arrow as is: it exposes the buffer protocol, so
/// `pyarrow.py_buffer` wraps it without a copy, and it is freed when Arrow lets go of it.
#[pyclass(module = "logpipe._native", frozen)]
struct Buffer {
    owned: Owned,
}

impl Buffer {
    fn bytes(&self) -> &[u8] {
        match &self.owned {
            Owned::U8(v) => v,
            Owned::I32(v) => as_bytes(v),
            Owned::I64(v) => as_bytes(v),
            Owned::F64(v) => as_bytes(v),
        }
    }
}

#[pymethods]
impl Buffer {
    /// The buffer protocol: Arrow wraps this memory without copying it.
    ///
    /// # Safety
    /// Called by Python only, with `view` pointing at a Py_buffer for this method to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        let bytes = slf.get().bytes();
        // SAFETY: Python calls this with `view` pointing at a Py_buffer to fill. FillInfo fills
        // it as one-dimensional, read-only bytes (readonly = 1: it refuses a PyBUF_WRITABLE
        // request, so the `*mut` cast never leads to a write) and takes a reference to `slf`
        // for the view, released with the view. While that reference lives the frozen `Buffer`
        // lives, and its vector is never changed after construction, so the pointer and length
        // stay valid for the whole life of the view.
        let status = unsafe {
            pyo3::ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                bytes.as_ptr() as *mut std::os::raw::c_void,
                bytes.len() as pyo3::ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if status == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.bytes().len()
    }
}

fn buffer(py: Python<'_>, owned: Owned) -> PyResult<Bound<'_, Buffer>> {
    Bound::new(py, Buffer { owned })
}

type ColumnBuffers<'py> = (Option<Bound<'py, Buffer>>, usize, Option<Bound<'py, Buffer>>, Bound<'py, Buffer>);

fn str_col(py: Python<'_>, col: StrCol) -> PyResult<ColumnBuffers<'_>> {
    let (bitmap, nulls) = col.validity.into_bitmap();
    Ok((
        bitmap.map(|b| buffer(py, Owned::U8(b))).transpose()?,
        nulls,
        Some(buffer(py, Owned::I32(col.offsets))?),
        buffer(py, Owned::U8(col.data))?,
    ))
}

fn num_col<T: Copy>(py: Python<'_>, col: NumCol<T>, wrap: fn(Vec<T>) -> Owned) -> PyResult<ColumnBuffers<'_>> {
    let (bitmap, nulls) = col.validity.into_bitmap();
    Ok((bitmap.map(|b| buffer(py, Owned::U8(b))).transpose()?, nulls, None, buffer(py, wrap(col.values))?))
}

#[pymethods]
impl Normaliser {
    /// `fields`: per canonical field (in profiles.FIELDS order), its paths, how they combine, and
    /// per path the factor to the field's unit (empty: none).
    #[new]
    #[pyo3(signature = (*, fields, root, lifts, always_consumed, level_scheme, level_names, numeric_levels,
                        label_service, label_host, extra_labels))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        fields: Vec<(Vec<Vec<String>>, String, Vec<f64>)>,
        root: Vec<String>,
        lifts: Vec<(Vec<String>, Vec<String>)>,
        always_consumed: Vec<String>,
        level_scheme: &str,
        level_names: HashMap<String, String>,
        numeric_levels: HashMap<String, String>,
        label_service: Option<String>,
        label_host: Option<String>,
        extra_labels: Vec<(String, String)>,
    ) -> PyResult<Self> {
        if fields.len() != FIELD_COUNT {
            return Err(PyValueError::new_err(format!("expected {FIELD_COUNT} fields")));
        }
        let fields = fields
            .into_iter()
            .map(|(paths, combine, scales)| {
                let combine = Combine::parse(&combine)
                    .ok_or_else(|| PyValueError::new_err(format!("unknown combine {combine:?}")))?;
                if !scales.is_empty() && (scales.len() != paths.len() || combine != Combine::First) {
                    return Err(PyValueError::new_err("scales: one per path, for a first-path field"));
                }
                Ok(FieldSpec { paths, combine, scales })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let scheme = match level_scheme {
            "auto" => Scheme::Auto,
            "pino" => Scheme::Pino,
            "python" => Scheme::Python,
            "syslog" => Scheme::Syslog,
            other => return Err(PyValueError::new_err(format!("unknown level scheme {other:?}"))),
        };
        let names = level_names
            .iter()
            .map(|(k, v)| Ok((k.clone(), level_index(v)?)))
            .collect::<PyResult<rustc_hash::FxHashMap<_, _>>>()?;
        let levels = Levels {
            scheme,
            names,
            pino: numeric_table(&numeric_levels, "pino", 1)?,
            python: numeric_table(&numeric_levels, "python", 0)?,
            syslog: numeric_table(&numeric_levels, "syslog", 0)?,
        };
        let spec = Spec {
            fields,
            root,
            lifts: lifts.into_iter().map(|(path, drop)| Lift { path, drop }).collect(),
            always_consumed,
            levels,
            label_service,
            label_host,
            extra_labels,
        };
        Ok(Normaliser { inner: normalise::Normaliser::new(spec) })
    }

    /// Normalise one batch. `data` holds the lines back to back, `line_offsets` (int64, n+1) cut
    /// it, `file_offsets` (int64, n) are the lines' source offsets. Returns the column buffers
    /// by name, the rejects as (line index, reason, detail) and, under "missing", how many
    /// records had no usable (ts, level, message) and how many neither ts nor level.
    #[pyo3(signature = (context, data, line_offsets, file_offsets, fallback_ts, source, source_key,
                        read_time_us, unterminated_offset))]
    #[allow(clippy::too_many_arguments)]
    fn normalise<'py>(
        &self,
        py: Python<'py>,
        mut context: PyRefMut<'_, Context>,
        data: &Bound<'py, PyAny>,
        line_offsets: &Bound<'py, PyAny>,
        file_offsets: &Bound<'py, PyAny>,
        fallback_ts: Option<Vec<Option<String>>>,
        source: &str,
        source_key: &str,
        read_time_us: i64,
        unterminated_offset: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let data = Bytes::get(data)?;
        let bytes = data.slice();
        let cuts = read_i64s(Bytes::get(line_offsets)?.slice(), "line_offsets")?;
        let offsets = read_i64s(Bytes::get(file_offsets)?.slice(), "file_offsets")?;
        let ranges = line_ranges(&cuts, bytes.len())
            .filter(|_| cuts.len() == offsets.len() + 1)
            .ok_or_else(|| PyValueError::new_err("line offsets do not match the data"))?;
        let fallback: Vec<Option<&str>> =
            fallback_ts.as_ref().map_or_else(Vec::new, |f| f.iter().map(|s| s.as_deref()).collect());
        let info = BatchInfo { source, source_key, read_time_us, unterminated_offset };
        let map = &mut context.map;
        let inner = &self.inner;
        let out = py.allow_threads(|| {
            let lines: Vec<&[u8]> = ranges.into_iter().map(|r| &bytes[r]).collect();
            inner.run(&lines, &offsets, &fallback, &info, map)
        });
        let c = out.columns;
        let result = PyDict::new(py);
        result.set_item("ts", num_col(py, c.ts, Owned::I64)?)?;
        for (name, col) in [
            ("level", c.level),
            ("message", c.message),
            ("message_key", c.message_key),
            ("logger", c.logger),
            ("service", c.service),
            ("host", c.host),
            ("request_id", c.request_id.into()),
            ("user_id", c.user_id),
            ("session_id", c.session_id),
            ("trace_id", c.trace_id),
            ("method", c.method),
            ("endpoint", c.endpoint),
            ("path", c.path),
            ("error", c.error),
            ("attrs", c.attrs),
            ("source", c.source),
            ("event_id", c.event_id),
        ] {
            result.set_item(name, str_col(py, col)?)?;
        }
        result.set_item("status", num_col(py, c.status, Owned::I32)?)?;
        result.set_item("duration_ms", num_col(py, c.duration_ms, Owned::F64)?)?;
        result.set_item("offset", num_col(py, c.offset, Owned::I64)?)?;
        let rejects = PyList::empty(py);
        for r in out.rejects {
            rejects.append((r.index, r.reason, r.detail))?;
        }
        result.set_item("rejects", rejects)?;
        let m = out.missing;
        result.set_item("missing", (m.ts, m.level, m.message, m.unmatched))?;
        Ok(result)
    }
}

/// Cut `data` (source bytes from offset `start`) into lines: returns the kept lines back to back,
/// their int64 cuts (n+1) and source offsets (n), and rejects as (offset, reason, detail, head).
#[pyfunction]
fn frame<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    start: i64,
    max_line: usize,
    head_bytes: usize,
) -> PyResult<Bound<'py, PyTuple>> {
    let data = Bytes::get(data)?;
    let bytes = data.slice();
    let f = py.allow_threads(|| framing::frame(bytes, start, max_line, head_bytes));
    let rejects = PyList::empty(py);
    for r in &f.rejects {
        let head = PyBytes::new(py, &bytes[r.head.0..r.head.1]);
        rejects.append((r.offset, r.reason, r.detail.as_str(), head))?;
    }
    (buffer(py, Owned::U8(f.data))?, buffer(py, Owned::I64(f.cuts))?, buffer(py, Owned::I64(f.offsets))?, rejects)
        .into_pyobject(py)
}

/// The endpoint template of a URL path (`/users/42?x=1` -> `/users/{id}`).
#[pyfunction]
fn endpoint_template(path: &str) -> String {
    let mut out = Vec::new();
    masks::endpoint(path, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// The message with numbers and ids masked as `<*>`.
#[pyfunction]
fn message_key(message: &str) -> String {
    let mut out = Vec::new();
    masks::message_key(message, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Microseconds since the epoch of a raw timestamp (ISO 8601 or unix s/ms/µs/ns), or None.
#[pyfunction]
fn parse_timestamp(raw: &str) -> Option<i64> {
    time::parse_ts(raw)
}

/// An Arrow string array for `text_bloom`: (offsets buffer, data buffer, first row, rows,
/// 64-bit offsets).
type StringArray<'py> = (Bound<'py, PyAny>, Bound<'py, PyAny>, usize, usize, bool);

/// The rows of one string array `text_bloom` reads: their offsets (rows + 1, of `width` bytes)
/// and the data between the first and the last, held (so a writable buffer copies only these).
struct Rows {
    offsets: Bytes,
    width: usize,
    rows: usize,
    data: Bytes,
    /// Where `data` starts in the array's data buffer.
    base: usize,
}

impl Rows {
    fn get((offsets, data, first, rows, wide): &StringArray<'_>) -> PyResult<Option<Rows>> {
        if *rows == 0 {
            return Ok(None);
        }
        let width = if *wide { 8 } else { 4 };
        // Offsets first..=first + rows, in bytes (numbers from Python: no step may overflow).
        let end = rows.checked_add(1).and_then(|n| first.checked_add(n));
        let span = end.and_then(|end| Some(first.checked_mul(width)?..end.checked_mul(width)?));
        let offsets = Bytes::get_part(offsets, |len| {
            span.filter(|s| s.end <= len).ok_or_else(|| PyValueError::new_err("offsets too short"))
        })?;
        let (start, end) = (offset_at(offsets.slice(), width, 0), offset_at(offsets.slice(), width, *rows));
        let data = Bytes::get_part(data, |len| match (start, end) {
            (Some(start), Some(end)) if start <= end && end <= len => Ok(start..end),
            _ => Err(PyValueError::new_err("offsets past the data")),
        })?;
        Ok(Some(Rows { offsets, width, rows: *rows, data, base: start.unwrap_or(0) }))
    }

    /// Each row's bytes, in order (an offset outside the held data is an error).
    fn values(&self) -> impl Iterator<Item = Result<&[u8], &'static str>> + '_ {
        let (offsets, data) = (self.offsets.slice(), self.data.slice());
        (0..self.rows).map(move |row| {
            let at = |i| offset_at(offsets, self.width, i).and_then(|o| o.checked_sub(self.base));
            let (start, end) = (at(row).ok_or("offsets past the data")?, at(row + 1).ok_or("offsets past the data")?);
            data.get(start..end).ok_or("offsets past the data")
        })
    }
}

/// Offset `i` of an Arrow offsets buffer (int32 or int64 little-endian, by `width`).
fn offset_at(offsets: &[u8], width: usize, i: usize) -> Option<usize> {
    let b = offsets.get(i * width..(i + 1) * width)?;
    let v = if width == 8 {
        i64::from_le_bytes(b.try_into().ok()?)
    } else {
        i64::from(i32::from_le_bytes(b.try_into().ok()?))
    };
    usize::try_from(v).ok()
}

/// The trigram bloom filter of string values for `logpipe search` (see textindex.rs): `columns`
/// are Arrow string arrays; returns (log2 of the filter's bits, the filter, bits set).
#[pyfunction]
fn text_bloom<'py>(py: Python<'py>, columns: Vec<StringArray<'py>>) -> PyResult<(u32, Bound<'py, PyBytes>, usize)> {
    let held: Vec<Rows> = columns.iter().map(Rows::get).collect::<PyResult<Vec<_>>>()?.into_iter().flatten().collect();
    let (log2, bloom, count) = py
        .allow_threads(|| -> Result<(u32, Vec<u8>, usize), &'static str> {
            let mut trigrams = textindex::Trigrams::new();
            for rows in &held {
                for value in rows.values() {
                    trigrams.add(value?);
                }
            }
            Ok(trigrams.finish())
        })
        .map_err(PyValueError::new_err)?;
    Ok((log2, PyBytes::new(py, &bloom), count))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Context>()?;
    m.add_class::<Normaliser>()?;
    m.add_class::<Buffer>()?;
    m.add_function(wrap_pyfunction!(frame, m)?)?;
    m.add_function(wrap_pyfunction!(endpoint_template, m)?)?;
    m.add_function(wrap_pyfunction!(message_key, m)?)?;
    m.add_function(wrap_pyfunction!(parse_timestamp, m)?)?;
    m.add_function(wrap_pyfunction!(text_bloom, m)?)?;
    m.add("MAX_DEPTH", json::MAX_DEPTH)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::line_ranges;

    #[test]
    fn line_cuts_are_checked_before_anything_is_sliced() {
        assert_eq!(line_ranges(&[0, 2, 2, 5], 5), Some(vec![0..2, 2..2, 2..5]));
        assert_eq!(line_ranges(&[1, 3, 3], 3), Some(vec![1..3, 3..3]));
        assert_eq!(line_ranges(&[4], 4), Some(vec![]));
        for bad in [&[0, 6][..], &[0, 3, 2], &[-1, 2], &[0, i64::MAX]] {
            assert_eq!(line_ranges(bad, 5), None, "{bad:?}");
        }
    }
}
