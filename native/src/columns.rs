//! Arrow column buffers built row by row: validity bitmap, offsets and values, as Arrow lays them
//! out, so Python wraps them in arrays without copying them again.

#[derive(Default)]
pub struct Validity {
    bits: Vec<u8>,
    len: usize,
    nulls: usize,
}

impl Validity {
    #[inline]
    fn push(&mut self, valid: bool) {
        if self.len.is_multiple_of(8) {
            self.bits.push(0);
        }
        if valid {
            self.bits[self.len / 8] |= 1 << (self.len % 8);
        } else {
            self.nulls += 1;
        }
        self.len += 1;
    }

    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        self.bits[i / 8] >> (i % 8) & 1 == 1
    }

    /// The bitmap, or None when nothing is null (Arrow's cheaper form).
    pub fn into_bitmap(self) -> (Option<Vec<u8>>, usize) {
        if self.nulls == 0 {
            (None, 0)
        } else {
            (Some(self.bits), self.nulls)
        }
    }
}

/// A `string` column (32-bit offsets).
pub struct StrCol {
    pub offsets: Vec<i32>,
    pub data: Vec<u8>,
    pub validity: Validity,
}

impl StrCol {
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        StrCol { offsets, data: Vec::with_capacity(bytes), validity: Validity::default() }
    }

    #[inline]
    pub fn push(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.push_bytes(v.as_bytes()),
            None => self.push_null(),
        }
    }

    #[inline]
    pub fn push_bytes(&mut self, value: &[u8]) {
        self.data.extend_from_slice(value);
        self.end_value();
    }

    #[inline]
    pub fn push_null(&mut self) {
        self.offsets.push(self.data.len() as i32);
        self.validity.push(false);
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Close a value whose bytes were appended to `data` directly.
    #[inline]
    pub fn end_value(&mut self) {
        self.offsets.push(self.data.len() as i32);
        self.validity.push(true);
    }
}

/// A `string` column that is read back while the batch is built (request ids, user and session
/// ids for the request context): its text is a `String` that only `push` appends whole `str`
/// values to, so every row is text without a check.
pub struct TextCol {
    offsets: Vec<i32>,
    data: String,
    validity: Validity,
}

impl TextCol {
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        TextCol { offsets, data: String::with_capacity(bytes), validity: Validity::default() }
    }

    #[inline]
    pub fn push(&mut self, value: Option<&str>) {
        if let Some(v) = value {
            self.data.push_str(v);
        }
        self.offsets.push(self.data.len() as i32);
        self.validity.push(value.is_some());
    }

    /// The value of row `i`, None when it is null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        if !self.validity.is_valid(i) {
            return None;
        }
        // The offsets are ends of whole pushed values: char boundaries, so this slicing's check passes.
        Some(&self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize])
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<TextCol> for StrCol {
    fn from(col: TextCol) -> StrCol {
        StrCol { offsets: col.offsets, data: col.data.into_bytes(), validity: col.validity }
    }
}

/// A fixed-width column (timestamps, int32, int64, float64).
pub struct NumCol<T> {
    pub values: Vec<T>,
    pub validity: Validity,
}

impl<T: Copy + Default> NumCol<T> {
    pub fn with_capacity(rows: usize) -> Self {
        NumCol { values: Vec::with_capacity(rows), validity: Validity::default() }
    }

    #[inline]
    pub fn push(&mut self, value: Option<T>) {
        self.values.push(value.unwrap_or_default());
        self.validity.push(value.is_some());
    }
}

// Arrow's buffers are little-endian; `as_bytes` hands over the numbers' memory as it is.
#[cfg(not(target_endian = "little"))]
compile_error!("the native normaliser writes Arrow buffers in the machine's byte order: little-endian only");

mod sealed {
    pub trait Sealed {}
}

/// Numbers whose memory is their value and nothing else: no padding, every bit pattern valid.
/// Sealed: implemented here for exactly the types Arrow columns are built of.
pub trait Plain: Copy + sealed::Sealed {}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl Plain for $t {}
    )*};
}
plain!(i32, i64, f64);

/// The raw bytes of a slice of numbers, little-endian as Arrow wants them.
pub fn as_bytes<T: Plain>(values: &[T]) -> &[u8] {
    // SAFETY: `values` is a live slice, so its pointer is valid (and non-null, also when empty)
    // for `size_of_val(values)` bytes, which are all initialised: `T: Plain` is a primitive
    // number with no padding. u8 has alignment 1. The result borrows `values`, so the memory
    // can neither be freed nor written while the bytes are in use.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values)) }
}
