//! Arrow column buffers built row by row: validity bitmap, offsets and values, as Arrow lays them
//! out, so Python wraps them in arrays without copying them again.

#[derive(Default)]
pub struct Validity {
    bits: Vec<u8>,
    len: usize,
    nulls: usize,
}

impl Validity {
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

    pub fn push(&mut self, value: Option<&str>) {
        match value {
            Some(v) => self.push_bytes(v.as_bytes()),
            None => self.push_null(),
        }
    }

    pub fn push_bytes(&mut self, value: &[u8]) {
        self.data.extend_from_slice(value);
        self.end_value();
    }

    pub fn push_null(&mut self) {
        self.offsets.push(self.data.len() as i32);
        self.validity.push(false);
    }

    /// The value of row `i`, None when it is null.
    pub fn get(&self, i: usize) -> Option<&str> {
        if !self.validity.is_valid(i) {
            return None;
        }
        let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        // Only whole UTF-8 strings are ever pushed.
        Some(unsafe { std::str::from_utf8_unchecked(&self.data[a..b]) })
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Close a value whose bytes were appended to `data` directly.
    pub fn end_value(&mut self) {
        self.offsets.push(self.data.len() as i32);
        self.validity.push(true);
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

    pub fn push(&mut self, value: Option<T>) {
        self.values.push(value.unwrap_or_default());
        self.validity.push(value.is_some());
    }
}

/// The raw bytes of a slice of numbers, little-endian as Arrow wants them.
pub fn as_bytes<T: Copy>(values: &[T]) -> &[u8] {
    // Plain-old-data numbers; the target is little-endian x86_64/aarch64.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values)) }
}
