//! `logpipe._native`: the normaliser, from framed JSON lines to canonical record columns.
//!
//! Python frames the lines and assembles Arrow arrays; this module does the per-line work
//! (validate, read fields, parse times and levels, mask ids, build attrs, fill request context)
//! without the GIL, and hands back Arrow-layout buffers.

use std::collections::HashMap;

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

/// A byte view of any buffer-protocol object (Arrow buffers and numpy arrays say their bytes are
/// signed, `bytes` says unsigned), held while in use.
enum Bytes {
    Signed(PyBuffer<i8>),
    Unsigned(PyBuffer<u8>),
}

impl Bytes {
    fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let held = match PyBuffer::<u8>::get(obj) {
            Ok(b) => Bytes::Unsigned(b),
            Err(_) => Bytes::Signed(PyBuffer::<i8>::get(obj)?),
        };
        let contiguous = match &held {
            Bytes::Signed(b) => b.is_c_contiguous(),
            Bytes::Unsigned(b) => b.is_c_contiguous(),
        };
        if !contiguous {
            return Err(PyValueError::new_err("buffer must be contiguous"));
        }
        Ok(held)
    }

    fn slice(&self) -> &[u8] {
        let (ptr, len) = match self {
            Bytes::Signed(b) => (b.buf_ptr().cast::<u8>(), b.len_bytes()),
            Bytes::Unsigned(b) => (b.buf_ptr().cast::<u8>(), b.len_bytes()),
        };
        if len == 0 {
            return &[];
        }
        // The buffer stays exported (and so alive and unmoved) while `self` lives.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

fn read_i64s(bytes: &[u8]) -> Vec<i64> {
    bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default())).collect()
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
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        let bytes = slf.get().bytes();
        // Read-only, one-dimensional bytes; Python keeps `slf` alive while the view exists.
        let status = pyo3::ffi::PyBuffer_FillInfo(
            view,
            slf.as_ptr(),
            bytes.as_ptr() as *mut std::os::raw::c_void,
            bytes.len() as pyo3::ffi::Py_ssize_t,
            1,
            flags,
        );
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
    /// `fields`: per canonical field (in profiles.FIELDS order), its paths and how they combine.
    #[new]
    #[pyo3(signature = (*, fields, root, lifts, always_consumed, level_scheme, level_names, numeric_levels,
                        label_service, label_host, extra_labels))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        fields: Vec<(Vec<Vec<String>>, String)>,
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
            .map(|(paths, combine)| {
                let combine = Combine::parse(&combine)
                    .ok_or_else(|| PyValueError::new_err(format!("unknown combine {combine:?}")))?;
                Ok(FieldSpec { paths, combine })
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
        let (data, cuts, offsets) = (Bytes::get(data)?, Bytes::get(line_offsets)?, Bytes::get(file_offsets)?);
        let (bytes, cuts, offsets) = (data.slice(), read_i64s(cuts.slice()), read_i64s(offsets.slice()));
        if cuts.len() != offsets.len() + 1 || cuts.last().is_some_and(|&end| end as usize > bytes.len()) {
            return Err(PyValueError::new_err("line offsets do not match the data"));
        }
        let fallback: Vec<Option<&str>> =
            fallback_ts.as_ref().map_or_else(Vec::new, |f| f.iter().map(|s| s.as_deref()).collect());
        let info = BatchInfo { source, source_key, read_time_us, unterminated_offset };
        let map = &mut context.map;
        let inner = &self.inner;
        let out = py.allow_threads(|| {
            let lines: Vec<&[u8]> = cuts.windows(2).map(|w| &bytes[w[0] as usize..w[1] as usize]).collect();
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
            ("request_id", c.request_id),
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
/// 64-bit offsets), the buffers as Python passes them, held, or read.
type StringArray<B> = (B, B, usize, usize, bool);

/// The trigram bloom filter of string values for `logpipe search` (see textindex.rs): `columns`
/// are Arrow string arrays; returns (log2 of the filter's bits, the filter, bits set).
#[pyfunction]
fn text_bloom<'py>(
    py: Python<'py>,
    columns: Vec<StringArray<Bound<'py, PyAny>>>,
) -> PyResult<(u32, Bound<'py, PyBytes>, usize)> {
    let held = columns
        .iter()
        .map(|(o, d, first, rows, wide)| Ok((Bytes::get(o)?, Bytes::get(d)?, *first, *rows, *wide)))
        .collect::<PyResult<Vec<_>>>()?;
    let views: Vec<StringArray<&[u8]>> =
        held.iter().map(|(o, d, first, rows, wide)| (o.slice(), d.slice(), *first, *rows, *wide)).collect();
    let (log2, bloom, count) = py
        .allow_threads(|| -> Result<(u32, Vec<u8>, usize), &'static str> {
            let mut trigrams = textindex::Trigrams::new();
            for &(offsets, data, first, rows, wide) in &views {
                let width = if wide { 8 } else { 4 };
                let at = |i: usize| -> Option<usize> {
                    let b = offsets.get(i * width..(i + 1) * width)?;
                    let v = if wide {
                        i64::from_le_bytes(b.try_into().ok()?)
                    } else {
                        i64::from(i32::from_le_bytes(b.try_into().ok()?))
                    };
                    usize::try_from(v).ok()
                };
                for row in first..first + rows {
                    let (start, end) = (at(row).ok_or("offsets too short")?, at(row + 1).ok_or("offsets too short")?);
                    trigrams.add(data.get(start..end).ok_or("offsets past the data")?);
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
