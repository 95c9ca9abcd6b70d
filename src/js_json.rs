//! JSON as V8 reads and writes it: `JSON.parse(buffer.toString('utf8'))`
//! and `JSON.stringify(value)` / `JSON.stringify(value, null, 2)`, byte for
//! byte, over `serde_json::Value`.
//!
//! Three things set V8 apart from serde_json, and each is kept here:
//! - **Lone surrogates.** JS strings are UTF-16 and may hold half of a
//!   surrogate pair (`objective.slice(0, 200)` can cut an emoji);
//!   `JSON.stringify` writes it as a `\udXXX` escape. A Rust `String` cannot
//!   hold one, so [`parse`] stores it as [`WTF_MARK`] followed by a private-use
//!   character that names the unit, writes a literal `WTF_MARK` as two of
//!   them, and the writers turn both back. Equality of strings is kept.
//! - **Numbers.** `JSON.parse` rounds every number to a double: integers
//!   beyond 2^53 lose digits, and one that overflows is ±Infinity, which
//!   `JSON.stringify` writes as `null` (so that is what [`parse`] keeps).
//!   Numbers are written as V8 prints them (`1e+21`, `1` for `1.0`).
//! - **Depth.** V8 parses any nesting; serde_json stops at 128 levels.
//!   [`parse`] is iterative and takes up to [`MAX_DEPTH`] levels, and refuses
//!   deeper documents with an error instead of overflowing a thread's stack.

use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// The deepest nesting [`parse`] accepts. The writers, `clone` and `drop`
/// recurse once per level (about 300 bytes a level in a release build), and
/// file work runs on 2 MiB threads: 2,000 levels fit with room to spare
/// (tested on a 1 MiB stack). `JSON.stringify` on Node's default stack
/// gives up at about 4,200.
pub const MAX_DEPTH: usize = 2_000;

/// Nesting accepted by [`from_slice_lossy`] (typed options and small
/// records, as deep as serde_json's own limit).
const TYPED_MAX_DEPTH: usize = 128;

/// Marks an encoded UTF-16 unit inside a Rust string (see the module docs).
pub const WTF_MARK: char = '\u{10FFFF}';
/// Lone surrogate `u` is stored as `WTF_MARK` + `char(UNIT_BASE + (u - 0xD800))`.
const UNIT_BASE: u32 = 0xF_0000;

/// Largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Why a document is not JSON, with the byte offset where it stopped.
fn syntax(what: &str, at: usize) -> serde_json::Error {
    serde::de::Error::custom(format!("{what} at byte {at}"))
}

/// `JSON.parse(bytes.toString('utf8'))`: invalid UTF-8 becomes U+FFFD as
/// Node's decoder makes it, lone surrogate escapes are kept (encoded), and
/// nesting up to [`MAX_DEPTH`] is read without recursion.
pub fn parse(bytes: &[u8]) -> serde_json::Result<Value> {
    parse_with_depth(bytes, MAX_DEPTH)
}

/// A typed value (options, small records) read from JSON text as [`parse`]
/// reads it, nested at most 128 levels.
pub fn from_slice_lossy<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    serde_json::from_value(parse_with_depth(bytes, TYPED_MAX_DEPTH)?)
}

fn parse_with_depth(bytes: &[u8], max_depth: usize) -> serde_json::Result<Value> {
    let text = String::from_utf8_lossy(bytes);
    Parser {
        s: text.as_bytes(),
        i: 0,
        max_depth,
    }
    .document()
}

/// A container being filled while the parser reads its members.
enum Open {
    Array(Vec<Value>),
    Object(Map<String, Value>, String),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, byte: u8, what: &str) -> serde_json::Result<()> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.i += 1;
            Ok(())
        } else {
            Err(syntax(what, self.i))
        }
    }

    fn document(mut self) -> serde_json::Result<Value> {
        let mut stack: Vec<Open> = Vec::new();
        'value: loop {
            self.skip_ws();
            let mut value = match self.peek() {
                Some(open @ (b'[' | b'{')) => {
                    if stack.len() >= self.max_depth {
                        return Err(syntax("nested too deeply", self.i));
                    }
                    self.i += 1;
                    self.skip_ws();
                    let close = if open == b'[' { b']' } else { b'}' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        if open == b'[' {
                            Value::Array(Vec::new())
                        } else {
                            Value::Object(Map::new())
                        }
                    } else {
                        if open == b'[' {
                            stack.push(Open::Array(Vec::new()));
                        } else {
                            let key = self.key()?;
                            stack.push(Open::Object(Map::new(), key));
                        }
                        continue 'value;
                    }
                }
                Some(b'"') => Value::String(self.string()?),
                Some(b't') => self.literal("true", Value::Bool(true))?,
                Some(b'f') => self.literal("false", Value::Bool(false))?,
                Some(b'n') => self.literal("null", Value::Null)?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(syntax("expected a value", self.i)),
            };
            // Hand the finished value to its container; close containers as they end.
            loop {
                let Some(top) = stack.last_mut() else {
                    self.skip_ws();
                    if self.i != self.s.len() {
                        return Err(syntax("unexpected text after the value", self.i));
                    }
                    return Ok(value);
                };
                self.skip_ws();
                let next = self.peek();
                self.i += 1;
                match top {
                    Open::Array(items) => {
                        items.push(value);
                        match next {
                            Some(b',') => continue 'value,
                            Some(b']') => {}
                            _ => return Err(syntax("expected ',' or ']'", self.i - 1)),
                        }
                    }
                    Open::Object(map, key) => {
                        // A repeated key keeps its first place and takes the last value.
                        map.insert(std::mem::take(key), value);
                        match next {
                            Some(b',') => {
                                *key = self.key()?;
                                continue 'value;
                            }
                            Some(b'}') => {}
                            _ => return Err(syntax("expected ',' or '}'", self.i - 1)),
                        }
                    }
                }
                value = match stack.pop() {
                    Some(Open::Array(items)) => Value::Array(items),
                    Some(Open::Object(map, _)) => Value::Object(map),
                    None => return Err(syntax("unbalanced", self.i)),
                };
            }
        }
    }

    /// `"key":`, leaving the parser at the value.
    fn key(&mut self) -> serde_json::Result<String> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(syntax("expected a key", self.i));
        }
        let key = self.string()?;
        self.expect(b':', "expected ':'")?;
        Ok(key)
    }

    fn literal(&mut self, word: &str, value: Value) -> serde_json::Result<Value> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(value)
        } else {
            Err(syntax("expected a value", self.i))
        }
    }

    fn number(&mut self) -> serde_json::Result<Value> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let from = p.i;
            while let Some(b'0'..=b'9') = p.peek() {
                p.i += 1;
            }
            p.i - from
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => return Err(syntax("bad number", self.i)),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(syntax("bad number", self.i));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(syntax("bad number", self.i));
            }
        }
        // The grammar above admits only ASCII, so this is valid UTF-8.
        let text =
            std::str::from_utf8(&self.s[start..self.i]).map_err(|_| syntax("bad number", start))?;
        let n: f64 = text.parse().map_err(|_| syntax("bad number", start))?;
        Ok(number_value(n))
    }

    /// A string literal; the parser is at its opening quote.
    fn string(&mut self) -> serde_json::Result<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let run = self.i;
            while let Some(&b) = self.s.get(self.i) {
                if b == b'"' || b == b'\\' || b < 0x20 || b == 0xF4 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(self.text(run, self.i)?);
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(0xF4) => {
                    // A character of plane 16: the mark itself must be doubled.
                    let end = (self.i + 4).min(self.s.len());
                    let c = self.text(self.i, end)?;
                    push_char(&mut out, c.chars().next().unwrap_or('\u{FFFD}'));
                    self.i += c.chars().next().map_or(1, char::len_utf8);
                }
                Some(_) => return Err(syntax("control character in string", self.i)),
                None => return Err(syntax("unterminated string", self.i)),
            }
        }
    }

    fn text(&self, from: usize, to: usize) -> serde_json::Result<&str> {
        // `s` came from a `str` and both ends sit on character boundaries.
        std::str::from_utf8(&self.s[from..to]).map_err(|_| syntax("bad UTF-8", from))
    }

    fn escape(&mut self, out: &mut String) -> serde_json::Result<()> {
        let at = self.i;
        let Some(&kind) = self.s.get(self.i + 1) else {
            return Err(syntax("unterminated string", at));
        };
        self.i += 2;
        let c = match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4().ok_or_else(|| syntax("bad \\u escape", at))?;
                match unit {
                    0xD800..=0xDBFF => {
                        let low = self.s.get(self.i..self.i + 2) == Some(b"\\u");
                        let save = self.i;
                        if low {
                            self.i += 2;
                            match self.hex4() {
                                Some(lo @ 0xDC00..=0xDFFF) => {
                                    let c = 0x10000 + ((unit - 0xD800) << 10) + (lo - 0xDC00);
                                    push_char(out, char::from_u32(c).unwrap_or('\u{FFFD}'));
                                    return Ok(());
                                }
                                _ => self.i = save,
                            }
                        }
                        push_unit(out, unit);
                        return Ok(());
                    }
                    0xDC00..=0xDFFF => {
                        push_unit(out, unit);
                        return Ok(());
                    }
                    _ => char::from_u32(unit).unwrap_or('\u{FFFD}'),
                }
            }
            _ => return Err(syntax("bad escape", at)),
        };
        out.push(c);
        Ok(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let hex = self.s.get(self.i..self.i + 4)?;
        let hex = std::str::from_utf8(hex).ok()?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.i += 4;
        u32::from_str_radix(hex, 16).ok()
    }
}

/// A JS number as a JSON value: integers as integers (so that `1` and `1.0`
/// are one value, as in JS), others as doubles, ±Infinity as `null`.
pub fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
        // Exact: |n| ≤ 2^53, and -0 becomes 0 (JSON.stringify writes both as 0).
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn push_char(out: &mut String, c: char) {
    if c == WTF_MARK {
        out.push(WTF_MARK);
    }
    out.push(c);
}

/// Store one lone surrogate unit in `out` (see the module docs).
pub fn push_unit(out: &mut String, unit: u32) {
    out.push(WTF_MARK);
    out.push(char::from_u32(UNIT_BASE + (unit - 0xD800)).unwrap_or('\u{FFFD}'));
}

/// One JS character of a stored string: a Unicode scalar or a lone surrogate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Char(char),
    Lone(u16),
}

/// The JS characters of `s`, decoding what [`parse`] encoded.
pub fn units(s: &str) -> impl Iterator<Item = Unit> + '_ {
    let mut chars = s.chars().peekable();
    std::iter::from_fn(move || {
        let c = chars.next()?;
        if c != WTF_MARK {
            return Some(Unit::Char(c));
        }
        match chars.peek().copied() {
            Some(WTF_MARK) => {
                chars.next();
                Some(Unit::Char(WTF_MARK))
            }
            Some(n) if (UNIT_BASE..UNIT_BASE + 0x800).contains(&u32::from(n)) => {
                chars.next();
                Some(Unit::Lone((0xD800 + u32::from(n) - UNIT_BASE) as u16))
            }
            _ => Some(Unit::Char(c)),
        }
    })
}

/// `JSON.stringify(value, null, 2)`.
pub fn to_pretty_string(value: &Value) -> serde_json::Result<String> {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value, Some(0));
    Ok(out)
}

/// `JSON.stringify(value)`.
pub fn to_compact_string(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value, None);
    out
}

/// Write `value`; `indent` is the current level for pretty output, `None` for compact.
fn write_value(out: &mut String, value: &Value, indent: Option<usize>) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent.map(|d| d + 1));
                write_value(out, item, indent.map(|d| d + 1));
            }
            newline(out, indent);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            let mut first = true;
            for (k, v) in v8_order(map) {
                if !first {
                    out.push(',');
                }
                first = false;
                newline(out, indent.map(|d| d + 1));
                write_string(out, k);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_value(out, v, indent.map(|d| d + 1));
            }
            newline(out, indent);
            out.push('}');
        }
    }
}

fn newline(out: &mut String, indent: Option<usize>) {
    if let Some(level) = indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str("  ");
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if let Some(i) = n
        .as_i64()
        .filter(|i| i.unsigned_abs() <= MAX_SAFE_INTEGER as u64)
    {
        let _ = write!(out, "{i}");
    } else if let Some(f) = n.as_f64().filter(|f| f.is_finite()) {
        out.push_str(ryu_js::Buffer::new().format_finite(f));
    } else {
        out.push_str("null");
    }
}

/// A string as `JSON.stringify` quotes it (ES2019 well-formed output).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let plain = !s
        .bytes()
        .any(|b| b == b'"' || b == b'\\' || b < 0x20 || b == 0xF4);
    if plain {
        out.push_str(s);
        out.push('"');
        return;
    }
    for unit in units(s) {
        match unit {
            Unit::Char('"') => out.push_str("\\\""),
            Unit::Char('\\') => out.push_str("\\\\"),
            Unit::Char('\u{8}') => out.push_str("\\b"),
            Unit::Char('\u{c}') => out.push_str("\\f"),
            Unit::Char('\n') => out.push_str("\\n"),
            Unit::Char('\r') => out.push_str("\\r"),
            Unit::Char('\t') => out.push_str("\\t"),
            Unit::Char(c) if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            Unit::Char(c) => out.push(c),
            Unit::Lone(u) => {
                let _ = write!(out, "\\u{u:04x}");
            }
        }
    }
    out.push('"');
}

/// An object's entries in V8's property order: keys that are array indices
/// first, ascending, then the others in insertion order. (`JSON.parse` and
/// object spread build objects that way.)
fn v8_order(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    if entries.iter().any(|(k, _)| array_index(k).is_some()) {
        // A stable sort: indices first by value, the rest keep their order.
        entries.sort_by_key(|(k, _)| array_index(k).map_or((1, 0), |i| (0, i)));
    }
    entries
}

/// `key` as an array index (a canonical integer below 2^32 - 1), if it is one.
fn array_index(key: &str) -> Option<u32> {
    let canonical = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    if !canonical || key.len() > 10 {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|&n| n < u64::from(u32::MAX))
        .map(|n| n as u32)
}

/// JavaScript truthiness of a JSON value.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `s.slice(0, n)` in UTF-16 code units, as JS slices: a cut through a
/// surrogate pair keeps its first half (a lone surrogate).
pub fn slice_utf16(s: &str, n: usize) -> String {
    let mut out = String::new();
    let mut taken = 0;
    for unit in units(s) {
        if taken >= n {
            break;
        }
        match unit {
            Unit::Char(c) if c.len_utf16() == 2 && taken + 2 > n => {
                let mut pair = [0u16; 2];
                c.encode_utf16(&mut pair);
                push_unit(&mut out, u32::from(pair[0]));
                taken += 1;
            }
            Unit::Char(c) => {
                push_char(&mut out, c);
                taken += c.len_utf16();
            }
            Unit::Lone(u) => {
                push_unit(&mut out, u32::from(u));
                taken += 1;
            }
        }
    }
    out
}

/// The UTF-16 code units of `s` as one-unit strings (what `{...s}` and
/// `[...s]`-by-index see), each kept as [`parse`] would keep it.
pub fn utf16_units(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for unit in units(s) {
        match unit {
            Unit::Char(c) if c.len_utf16() == 2 => {
                let mut pair = [0u16; 2];
                c.encode_utf16(&mut pair);
                for half in pair {
                    let mut one = String::new();
                    push_unit(&mut one, u32::from(half));
                    out.push(one);
                }
            }
            Unit::Char(c) => {
                let mut one = String::new();
                push_char(&mut one, c);
                out.push(one);
            }
            Unit::Lone(u) => {
                let mut one = String::new();
                push_unit(&mut one, u32::from(u));
                out.push(one);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
