"""Types of the native module built from native/ (Rust, see native/src/lib.rs).

Buffer arguments (`_Buffer`) must be C-contiguous (else ValueError). A read-only buffer
(`bytes`, a `memoryview` of bytes, Arrow buffers over native memory) is read in place with the
GIL released; a writable one (`bytearray`, a writable `memoryview`, an Arrow buffer fresh from
a compute kernel) is copied first, because another thread could change it during the call.
"""

from typing_extensions import Buffer as _Buffer

MAX_DEPTH: int

class Buffer:
    """Memory owned by the native side, exposed through the buffer protocol (no copy)."""

    def __buffer__(self, flags: int, /) -> memoryview: ...
    def __len__(self) -> int: ...

class Context:
    def __init__(self, max_entries: int, max_age_s: int) -> None: ...
    def __len__(self) -> int: ...
    def clear(self) -> None: ...

# Per column: (validity bitmap or None, null count, offsets or None, values).
ColumnBuffers = tuple[Buffer | None, int, Buffer | None, Buffer]

class Normaliser:
    def __init__(
        self,
        *,
        fields: list[tuple[list[list[str]], str, list[float]]],
        root: list[str],
        lifts: list[tuple[list[str], list[str]]],
        always_consumed: list[str],
        level_scheme: str,
        level_names: dict[str, str],
        numeric_levels: dict[str, str],
        label_service: str | None,
        label_host: str | None,
        extra_labels: list[tuple[str, str]],
    ) -> None: ...
    # Lines are `data[line_offsets[i]:line_offsets[i + 1]]` (int64 cuts, n+1, checked to fit the
    # data: else ValueError); a line that is not UTF-8 is an `invalid_utf8` reject.
    def normalise(
        self,
        context: Context,
        data: _Buffer,
        line_offsets: _Buffer,
        file_offsets: _Buffer,
        fallback_ts: list[str | None] | None,
        source: str,
        source_key: str,
        read_time_us: int,
        unterminated_offset: int,
    ) -> dict[str, ColumnBuffers | list[tuple[int, str, str]] | tuple[int, int, int, int]]: ...

def frame(
    data: _Buffer, start: int, max_line: int, head_bytes: int
) -> tuple[Buffer, Buffer, Buffer, list[tuple[int, str, str, bytes]]]: ...
def endpoint_template(path: str) -> str: ...
def message_key(message: str) -> str: ...
def parse_timestamp(raw: str) -> int | None: ...
def text_bloom(columns: list[tuple[_Buffer, _Buffer, int, int, bool]]) -> tuple[int, bytes, int]: ...
