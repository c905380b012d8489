//! Cut a batch of source bytes into lines: UTF-8 checked, blank lines dropped, oversized lines
//! and lines that are not UTF-8 set aside as rejects. The kept lines are copied back to back
//! (without their newlines) so they form one Arrow string array.

pub const UTF8_BOM: &[u8] = b"\xef\xbb\xbf";

pub struct FramedLines {
    pub data: Vec<u8>,
    /// n + 1 cuts into `data`.
    pub cuts: Vec<i64>,
    /// The source offset of each kept line.
    pub offsets: Vec<i64>,
    pub rejects: Vec<FrameReject>,
}

pub struct FrameReject {
    pub offset: i64,
    pub reason: &'static str,
    pub detail: String,
    pub head: (usize, usize),
}

/// The dead-letter detail of a line that is not UTF-8.
pub fn utf8_detail(e: &std::str::Utf8Error) -> String {
    format!("invalid UTF-8 at byte {} of the line", e.valid_up_to())
}

/// `start` is the source offset of `data[0]`; a BOM at source offset 0 is not part of the line.
pub fn frame(data: &[u8], start: i64, max_line: usize, head_bytes: usize) -> FramedLines {
    let mut out = FramedLines {
        data: Vec::with_capacity(data.len()),
        cuts: Vec::with_capacity(data.len() / 128 + 2),
        offsets: Vec::with_capacity(data.len() / 128 + 1),
        rejects: Vec::new(),
    };
    out.cuts.push(0);
    let mut pos = 0;
    while pos < data.len() {
        let end = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
        let offset = start + pos as i64;
        let mut line = &data[pos..end];
        if offset == 0 && line.starts_with(UTF8_BOM) {
            line = &line[UTF8_BOM.len()..];
        }
        let head = (pos, pos + (end - pos).min(head_bytes));
        pos = end + 1;
        if line.is_empty() || line == b"\r" {
            continue;
        }
        if line.len() > max_line {
            let detail = format!("{} bytes", end - head.0);
            out.rejects.push(FrameReject { offset, reason: "line_too_long", detail, head });
            continue;
        }
        if let Err(e) = std::str::from_utf8(line) {
            out.rejects.push(FrameReject { offset, reason: "invalid_utf8", detail: utf8_detail(&e), head });
            continue;
        }
        out.data.extend_from_slice(line);
        out.cuts.push(out.data.len() as i64);
        out.offsets.push(offset);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_lines() {
        let f = frame(b"\xef\xbb\xbf{}\n\n\r\n{\"a\":1}\r\n\xff\nlast", 0, 100, 8);
        assert_eq!(f.offsets, vec![0, 9, 20]);
        assert_eq!(f.data, b"{}{\"a\":1}\rlast");
        assert_eq!(f.rejects.len(), 1);
        assert_eq!((f.rejects[0].offset, f.rejects[0].reason), (18, "invalid_utf8"));
        let long = frame(b"0123456789\nab\n", 5, 4, 3);
        assert_eq!(long.offsets, vec![16]);
        assert_eq!((long.rejects[0].detail.as_str(), long.rejects[0].head), ("10 bytes", (0, 3)));
    }
}
