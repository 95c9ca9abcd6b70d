//! JSON as V8 reads and writes it: `JSON.parse(buffer.toString('utf8'))`
//! and `JSON.stringify(value)` / `JSON.stringify(value, null, 2)`, byte for
//! byte, over `serde_json::Value`.
//!
//! Three things set V8 apart from `serde_json`, and each is kept here:
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
//! - **Depth.** V8 parses any nesting; `serde_json` stops at 128 levels.
//!   [`parse`] is iterative and takes up to [`MAX_DEPTH`] levels, and refuses
//!   deeper documents with an error instead of overflowing a thread's stack.
//!
//! The parser is in `js_json/parse.rs`, the writers in `js_json/write.rs`,
//! and `js_json/strings.rs` holds the lone-surrogate encoding both share
//! and the string operations that must count as JS counts (UTF-16 units).
//! The names re-exported below are the module's whole surface, whichever
//! file holds them, so callers say `js_json::parse` and never the file.

mod parse;
mod strings;
mod write;

pub(crate) use parse::{from_slice_lossy, parse};
pub(crate) use strings::{slice_utf16, utf16_units};
pub(crate) use write::{to_compact_string, to_pretty_string};

use serde_json::{Number, Value};

/// The deepest nesting [`parse`] accepts. The writers, `clone` and `drop`
/// recurse once per level (about 300 bytes a level in a release build), and
/// file work runs on 2 MiB threads: 2,000 levels fit with room to spare
/// (tested on a 1 MiB stack). `JSON.stringify` on Node's default stack
/// gives up at about 4,200.
pub(crate) const MAX_DEPTH: usize = 2_000;

/// Largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A JS number as a JSON value: integers as integers (so that `1` and `1.0`
/// are one value, as in JS), others as doubles, ±Infinity as `null`.
pub(crate) fn number_value(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER {
        // Exact: |n| ≤ 2^53, and -0 becomes 0 (JSON.stringify writes both as 0).
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// JavaScript truthiness of a JSON value.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests;
