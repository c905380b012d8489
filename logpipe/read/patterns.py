"""Message templates mined Drain-style: group log messages by the format string that made them.

Pure Python, no I/O: the caller feeds `(message, ts)` pairs in a fixed order and reads the
templates back. The same input in the same order always gives the same templates.

How a message finds its group (after He et al., "Drain: An Online Log Parsing Approach with
Fixed Depth Tree", ICWS 2017; written from the paper's description, not from its code):

1. **Tokens.** The message is split on white space after quoted values (`'cart_7'`, `"a b"`)
   are masked whole. Each token is masked by kind: numbers (with a unit: `250ms`, `1.5s`, `3KB`,
   `99%`), UUIDs, hex ids, IPv4/IPv6 addresses with a port, e-mail addresses, URLs, dates and
   times become `<*>`. A `key:value` or `key=value` token keeps its key and separator
   (`product:77` -> `product:<*>`), and a path keeps its constant segments
   (`/api/orders/42` -> `/api/orders/<*>`).
2. **A fixed-depth tree.** Messages are first split by token count, then by their leading
   tokens (`depth` of them; a token that holds a digit, or a new token at a node that already
   has `max_children`, goes down the `<*>` branch), so a message is compared with a few
   candidate groups only.
3. **Similarity.** In the leaf, the candidate template with the largest share of positions
   equal to the message (or sharing a `key:`; a `<*>` made by merging equals only `<*>`) wins
   if that share is at least `similarity`; ties go to the older group. Otherwise the message starts a new group.
4. **Merging.** The winning template becomes `<*>` where it differs from the message, keeping
   a shared `key:`/`key=` prefix (`status:ok` and `status:failed` -> `status:<*>`).

Groups whose templates end up equal are reported as one. Every message lands in exactly one
group, so the counts add up to the number of messages fed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Final

WILDCARD: Final = "<*>"

DEFAULT_SIMILARITY: Final = 0.7  # chosen on benchmarks/patterns_accuracy.py (see its grid)
DEFAULT_DEPTH: Final = 2
DEFAULT_MAX_CHILDREN: Final = 100
DEFAULT_EXAMPLES: Final = 3
_MICROSECOND: Final = timedelta(microseconds=1)
MAX_TOKENS: Final = 200  # a longer message is cut here for grouping (its text is kept whole)

# A quoted value starts after a space or punctuation and ends before one: `can't` is no quote.
_QUOTED: Final = re.compile(r"""(?<![\w])(["'])(?:(?!\1).){0,500}?\1(?![\w])""")
_LEAD: Final = "([{"
_TRAIL: Final = ")]},;:.!?"
_VARIABLE: Final = re.compile(
    r"""
    [-+]?(?:\d+(?:[.,]\d+)*|\.\d+)(?:[eE][-+]?\d+)?(?:[a-zA-Zµ%]{1,3})?      # 42, -1.5, 1,024, 250ms, 3KB, 99%
    | 0[xX][0-9a-fA-F]+                                                    # 0x1f
    | (?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}            # hex ids with a digit and a letter
    | [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}  # UUID
    | \d{1,3}(?:\.\d{1,3}){3}(?::\d+)?                                     # IPv4[:port]
    | \[?(?=[0-9a-fA-F:]*\d)[0-9a-fA-F]*:[0-9a-fA-F]*:[0-9a-fA-F:]*\]?(?::\d+)?  # IPv6, hh:mm:ss
    | \d{4}-\d{2}-\d{2}(?:[T\ ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?  # dates
    | [\w.+-]+@[\w-]+(?:\.[\w-]+)+                                          # e-mail
    | [a-zA-Z][a-zA-Z0-9+.-]*://\S+                                         # URL
    | (?=[\w-]*\d)[a-zA-Z]{1,12}[-_]\w*\d\w*                                # prefixed ids: ord_8f3a, req-42
    """,
    re.VERBOSE,
)
_KEY_VALUE: Final = re.compile(r"([A-Za-z_][\w.\-]*)([:=])(.+)")
_KEY_PREFIX: Final = re.compile(r"[A-Za-z_][\w.\-]*[:=]")


@lru_cache(maxsize=1 << 16)  # words repeat: most tokens of a log are seen many times
def mask_token(token: str) -> str:
    """One white-space token with its variable part masked.

    >>> [mask_token(t) for t in ("product:77", "id=3f2a9c1b", "/api/orders/42,", "(250ms)", "ok")]
    ['product:<*>', 'id=<*>', '/api/orders/<*>,', '(<*>)', 'ok']
    """
    start, end = 0, len(token)
    while start < end and token[start] in _LEAD:
        start += 1
    while end > start and token[end - 1] in _TRAIL:
        end -= 1
    core = token[start:end]
    if not core:
        return token
    return token[:start] + _mask_core(core) + token[end:]


def _mask_core(core: str) -> str:
    if _VARIABLE.fullmatch(core):
        return WILDCARD
    if "/" in core:
        return "/".join(WILDCARD if part and _VARIABLE.fullmatch(part) else part for part in core.split("/"))
    key_value = _KEY_VALUE.fullmatch(core)
    if key_value is not None:
        key, sep, value = key_value.groups()
        return key + sep + mask_token(value)
    return core


def tokenize(message: str) -> list[str]:
    """The masked tokens of `message` (quoted values first, then token by token).

    >>> tokenize("GET /api/users/42 took 12ms for user:7 'bob smith'")
    ['GET', '/api/users/<*>', 'took', '<*>', 'for', 'user:<*>', "'<*>'"]
    """
    unquoted = _QUOTED.sub(lambda m: f"{m.group(1)}{WILDCARD}{m.group(1)}", message)
    return [mask_token(t) for t in unquoted.split()[:MAX_TOKENS]]


def merge_token(template: str, token: str) -> str:
    """The template token that covers both: itself when it does, else `<*>` keeping what they share
    of a `key:`/`key=` prefix and of the brackets and punctuation around them.

    >>> merge_token("status:ok", "status:failed"), merge_token("a", "b"), merge_token("<*>:", "abc:")
    ('status:<*>', '<*>', '<*>:')
    """
    if covers(template, token):
        return template
    lead = _shared(template, token, _LEAD, reverse=False)
    trail = _shared(template, token, _TRAIL, reverse=True)
    key = _KEY_PREFIX.match(template, len(lead))
    if key is not None and token.startswith(key.group(0), len(lead)):
        lead += key.group(0)
    if len(lead) + len(trail) > min(len(template), len(token)):
        return WILDCARD
    return lead + WILDCARD + trail


def _shared(a: str, b: str, chars: str, *, reverse: bool) -> str:
    """The longest run of `chars` that both start with (end with, when `reverse`)."""
    n = 0
    while n < min(len(a), len(b)):
        x, y = (a[-1 - n], b[-1 - n]) if reverse else (a[n], b[n])
        if x != y or x not in chars:
            break
        n += 1
    if not n:
        return ""
    return a[len(a) - n :] if reverse else a[:n]


def covers(template: str, token: str) -> bool:
    """Whether a template token stands for `token`: equal, or equal around its one `<*>`.

    >>> covers("<*>", "x"), covers("user:<*>", "user:7"), covers("(<*>)", "(7"), covers("a", "b")
    (True, True, False, False)
    """
    if template == token:
        return True
    head, star, tail = template.partition(WILDCARD)
    return (
        bool(star)
        and WILDCARD not in tail
        and len(token) >= len(head) + len(tail)
        and token.startswith(head)
        and token.endswith(tail)
    )


def similarity(template: Sequence[str], tokens: Sequence[str]) -> float:
    """Share of positions where the template token equals the message's, or both have the same
    `key:`/`key=` (the key is the constant part of such a token).

    A `<*>` the template got by merging earns nothing against a word: counting it (as it covers
    the word) would let a widened template swallow messages of other shapes, one merge at a
    time (`connection <*> by <*>` then taking `connection to <*> refused`). A `<*>` the message
    also has (a masked number) counts, so shapes made of masked values still match.
    """
    if not tokens:
        return 1.0
    return sum(1 for t, m in zip(template, tokens, strict=True) if t == m or _same_key(t, m)) / len(tokens)


def _same_key(template: str, token: str) -> bool:
    key = _KEY_PREFIX.match(template)
    return key is not None and token.startswith(key.group(0))


@dataclass(frozen=True, slots=True)
class Window:
    """The time range the trend is counted over: `buckets` equal slices of `[start, end)`."""

    start: datetime
    end: datetime
    buckets: int = 12

    def bucket(self, ts: datetime) -> int:
        """The slice `ts` falls in; times outside the range count in the first or last slice."""
        span = (self.end - self.start) // _MICROSECOND  # whole microseconds: exact edges
        if span <= 0 or self.buckets <= 1:
            return 0
        index = (ts - self.start) // _MICROSECOND * self.buckets // span
        return min(max(index, 0), self.buckets - 1)


@dataclass(frozen=True, slots=True)
class Pattern:
    """One mined template and what it matched."""

    template: str
    count: int
    examples: tuple[str, ...]
    first_seen: datetime | None
    last_seen: datetime | None
    trend: tuple[int, ...]


@dataclass(slots=True)
class _Group:
    id: int
    tokens: list[str]
    count: int = 0
    examples: list[str] = field(default_factory=list)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    trend: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    groups: list[_Group] = field(default_factory=list)


class PatternMiner:
    """Feed messages with `add`, read templates with `patterns`.

    >>> miner = PatternMiner()
    >>> for n in (7, 8, 9):
    ...     _ = miner.add(f"product:{n} out of stock")
    >>> [(p.template, p.count) for p in miner.patterns()]
    [('product:<*> out of stock', 3)]
    """

    def __init__(
        self,
        *,
        similarity: float = DEFAULT_SIMILARITY,
        depth: int = DEFAULT_DEPTH,
        max_children: int = DEFAULT_MAX_CHILDREN,
        examples: int = DEFAULT_EXAMPLES,
        window: Window | None = None,
    ) -> None:
        if not 0.0 <= similarity <= 1.0:
            raise ValueError(f"similarity is a share between 0 and 1, not {similarity}")
        self.similarity = similarity
        self.depth = max(depth, 0)
        self.max_children = max(max_children, 1)
        self.examples = max(examples, 0)
        self.window = window
        self.total = 0
        self._root = _Node()
        self._groups: list[_Group] = []

    def add(self, message: str | None, ts: datetime | None = None) -> int:
        """Group one message (None counts as the empty message); returns its group's id."""
        text = message or ""
        tokens = tokenize(text)
        leaf = self._leaf(tokens)
        group = self._best(leaf.groups, tokens)
        if group is None:
            group = _Group(len(self._groups), tokens, trend=[0] * (self.window.buckets if self.window else 0))
            self._groups.append(group)
            leaf.groups.append(group)
        else:
            group.tokens = [merge_token(t, m) for t, m in zip(group.tokens, tokens, strict=True)]
        self._count(group, text, ts)
        return group.id

    def add_all(self, messages: Iterable[tuple[str | None, datetime | None]]) -> None:
        for message, ts in messages:
            self.add(message, ts)

    def template_of(self, group_id: int) -> str:
        """The current template of the group `add` returned (groups keep their id as they widen)."""
        return " ".join(self._groups[group_id].tokens)

    def patterns(self) -> list[Pattern]:
        """Every template, most frequent first (then alphabetically); equal templates as one."""
        merged: dict[str, Pattern] = {}
        for group in self._groups:
            template = " ".join(group.tokens)
            seen = merged.get(template)
            merged[template] = _pattern(template, group) if seen is None else _combine(seen, group, self.examples)
        return sorted(merged.values(), key=lambda p: (-p.count, p.template))

    # --- the tree ----------------------------------------------------------------------------

    def _leaf(self, tokens: Sequence[str]) -> _Node:
        node = self._root.children.setdefault(str(len(tokens)), _Node())
        for token in tokens[: self.depth]:
            key = WILDCARD if any(c.isdigit() for c in token) or WILDCARD in token else token
            child = node.children.get(key)
            if child is None:
                if len(node.children) >= self.max_children - (WILDCARD not in node.children):
                    key = WILDCARD
                child = node.children.setdefault(key, _Node())
            node = child
        return node

    def _best(self, candidates: Sequence[_Group], tokens: Sequence[str]) -> _Group | None:
        best, best_score = None, -1.0
        for group in candidates:
            score = similarity(group.tokens, tokens)
            if score > best_score:
                best, best_score = group, score
        return best if best is not None and best_score >= self.similarity else None

    def _count(self, group: _Group, text: str, ts: datetime | None) -> None:
        self.total += 1
        group.count += 1
        if len(group.examples) < self.examples and text not in group.examples:
            group.examples.append(text)
        if ts is not None:
            if group.first_seen is None or ts < group.first_seen:
                group.first_seen = ts
            if group.last_seen is None or ts > group.last_seen:
                group.last_seen = ts
            if self.window is not None:
                group.trend[self.window.bucket(ts)] += 1


def _pattern(template: str, group: _Group) -> Pattern:
    return Pattern(template, group.count, tuple(group.examples), group.first_seen, group.last_seen, tuple(group.trend))


def _combine(seen: Pattern, group: _Group, examples: int) -> Pattern:
    """Two groups that widened to the same template: one pattern with both's counts."""
    firsts = [t for t in (seen.first_seen, group.first_seen) if t is not None]
    lasts = [t for t in (seen.last_seen, group.last_seen) if t is not None]
    kept = list(seen.examples)
    for example in group.examples:
        if len(kept) < examples and example not in kept:
            kept.append(example)
    return Pattern(
        seen.template,
        seen.count + group.count,
        tuple(kept),
        min(firsts) if firsts else None,
        max(lasts) if lasts else None,
        tuple(a + b for a, b in zip(seen.trend, group.trend, strict=True)),
    )
