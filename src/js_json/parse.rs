//! `JSON.parse` as V8 does it: lossy UTF-8, lone surrogate escapes kept
//! (encoded as [`strings`](super::strings) describes), numbers rounded to
//! doubles, and nesting read with an explicit stack instead of recursion,
//! so a deep document is an error and not a stack overflow.

use super::strings::{push_char, push_unit};
use super::{number_value, MAX_DEPTH};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Nesting accepted by [`from_slice_lossy`] (typed options and small
/// records, as deep as `serde_json`'s own limit).
const TYPED_MAX_DEPTH: usize = 128;

/// Why a document is not JSON, with the byte offset where it stopped.
fn syntax(what: &str, at: usize) -> serde_json::Error {
    serde::de::Error::custom(format!("{what} at byte {at}"))
}

/// `JSON.parse(bytes.toString('utf8'))`: invalid UTF-8 becomes U+FFFD as
/// Node's decoder makes it, lone surrogate escapes are kept (encoded), and
/// nesting up to [`MAX_DEPTH`] is read without recursion.
pub(crate) fn parse(bytes: &[u8]) -> serde_json::Result<Value> {
    parse_with_depth(bytes, MAX_DEPTH)
}

/// A typed value (options, small records) read from JSON text as [`parse`]
/// reads it, nested at most 128 levels.
pub(crate) fn from_slice_lossy<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
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
