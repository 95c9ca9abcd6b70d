//! `JSON.stringify(value)` and `JSON.stringify(value, null, 2)`, byte
//! for byte: V8's number printing, its escapes (ES2019 well-formed output:
//! a lone surrogate is written as `\udXXX`) and its property order.

use super::strings::{units, Unit};
use super::MAX_SAFE_INTEGER;
use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// `JSON.stringify(value, null, 2)`. Fallible in shape, as `serde_json`'s
/// writers are, so callers need not change if it ever can fail.
#[allow(clippy::unnecessary_wraps)]
pub(crate) fn to_pretty_string(value: &Value) -> serde_json::Result<String> {
    let mut out = String::with_capacity(256);
    write_value(&mut out, value, Some(0));
    Ok(out)
}

/// `JSON.stringify(value)`.
pub(crate) fn to_compact_string(value: &Value) -> String {
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
