//! Serialisation that matches `JSON.stringify(value, null, 2)` byte for byte.
//!
//! serde_json's pretty printer already agrees with V8 on layout, key order
//! (with `preserve_order`) and string escapes; numbers are where they part:
//! V8 prints `1` for `1.0`, `1e+21` for `1e21`, and every integer beyond
//! 2^53 as the double it becomes. [`JsFormatter`] fixes exactly that.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::Value;
use std::borrow::Cow;
use std::io;

/// Largest integer a JS number holds exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// `JSON.stringify(value, null, 2)`.
pub fn to_pretty_string(value: &Value) -> serde_json::Result<String> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JsFormatter::default());
    V8Order(value).serialize(&mut ser)?;
    // serde_json only ever writes UTF-8.
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// A value whose objects serialise in V8's property order: keys that are
/// array indices first, ascending, then the others in insertion order.
/// (`JSON.parse` and object spread build objects that way.)
struct V8Order<'a>(&'a Value);

impl Serialize for V8Order<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                if map.keys().any(|k| array_index(k).is_some()) {
                    let mut indices: Vec<_> = map
                        .iter()
                        .filter_map(|(k, v)| array_index(k).map(|i| (i, k, v)))
                        .collect();
                    indices.sort_by_key(|(i, _, _)| *i);
                    for (_, k, v) in indices {
                        out.serialize_entry(k, &V8Order(v))?;
                    }
                    for (k, v) in map.iter().filter(|(k, _)| array_index(k).is_none()) {
                        out.serialize_entry(k, &V8Order(v))?;
                    }
                } else {
                    for (k, v) in map {
                        out.serialize_entry(k, &V8Order(v))?;
                    }
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&V8Order(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
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

/// Parse JSON as `JSON.parse(buffer.toString('utf8'))` would: invalid UTF-8
/// and lone surrogate escapes (`"\ud83d"`, which JSON.stringify writes for a
/// split emoji) become U+FFFD instead of failing the whole document.
pub fn from_slice_lossy<T: DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let strict = match serde_json::from_slice(bytes) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let text = String::from_utf8_lossy(bytes);
    let repaired = replace_lone_surrogates(&text);
    if matches!(text, Cow::Borrowed(_)) && repaired.is_none() {
        return Err(strict);
    }
    serde_json::from_str(repaired.as_deref().unwrap_or(&text))
}

/// `text` with every `\uD800`–`\uDFFF` escape that is not half of a pair
/// turned into `\ufffd`; `None` when there is none.
fn replace_lone_surrogates(text: &str) -> Option<String> {
    fn escaped_unit(b: &[u8], i: usize) -> Option<u16> {
        let hex = b.get(i..i + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    }
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let (mut i, mut copied, mut in_string) = (0, 0, false);
    while i < b.len() {
        match b[i] {
            b'"' => in_string = !in_string,
            b'\\' if in_string => {
                let unit = escaped_unit(b, i);
                let width = match unit {
                    Some(0xD800..=0xDBFF)
                        if matches!(escaped_unit(b, i + 6), Some(0xDC00..=0xDFFF)) =>
                    {
                        12
                    }
                    Some(0xD800..=0xDFFF) => {
                        let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                        o.push_str(&text[copied..i]);
                        o.push_str("\\ufffd");
                        copied = i + 6;
                        6
                    }
                    Some(_) => 6,
                    None => 2,
                };
                i += width;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let mut out = out?;
    out.push_str(&text[copied.min(text.len())..]);
    Some(out)
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

/// `s.slice(0, n)` in UTF-16 code units, never splitting a surrogate pair.
pub fn slice_utf16(s: &str, n: usize) -> String {
    let mut units = 0;
    s.chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= n
        })
        .collect()
}

/// A [`PrettyFormatter`] with a two-space indent whose numbers print as V8 prints them.
pub struct JsFormatter {
    layout: PrettyFormatter<'static>,
}

impl Default for JsFormatter {
    fn default() -> Self {
        JsFormatter {
            layout: PrettyFormatter::with_indent(b"  "),
        }
    }
}

fn write_js_number<W: ?Sized + io::Write>(writer: &mut W, n: f64) -> io::Result<()> {
    writer.write_all(ryu_js::Buffer::new().format(n).as_bytes())
}

impl Formatter for JsFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        if value.is_finite() {
            write_js_number(writer, value)
        } else {
            writer.write_all(b"null")
        }
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }

    fn write_u64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u64) -> io::Result<()> {
        if value <= MAX_SAFE_INTEGER {
            writer.write_all(value.to_string().as_bytes())
        } else {
            write_js_number(writer, value as f64)
        }
    }

    fn write_i64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i64) -> io::Result<()> {
        if value.unsigned_abs() <= MAX_SAFE_INTEGER {
            writer.write_all(value.to_string().as_bytes())
        } else {
            write_js_number(writer, value as f64)
        }
    }

    fn write_u128<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u128) -> io::Result<()> {
        write_js_number(writer, value as f64)
    }

    fn write_i128<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i128) -> io::Result<()> {
        write_js_number(writer, value as f64)
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.layout.begin_array(writer)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.layout.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.layout.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.layout.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.layout.begin_object(writer)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.layout.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.layout.begin_object_key(writer, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.layout.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.layout.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn pretty(text: &str) -> String {
        let value: Value = serde_json::from_str(text).expect("test input is JSON");
        to_pretty_string(&value).expect("serialises")
    }

    #[test]
    fn layout_matches_v8() {
        assert_eq!(pretty("{}"), "{}");
        assert_eq!(pretty("[]"), "[]");
        assert_eq!(
            pretty(r#"{"a":[],"b":{}}"#),
            "{\n  \"a\": [],\n  \"b\": {}\n}"
        );
        assert_eq!(
            pretty(r#"[1,[2,{"x":null}]]"#),
            "[\n  1,\n  [\n    2,\n    {\n      \"x\": null\n    }\n  ]\n]"
        );
    }

    #[test]
    fn array_index_keys_come_first_as_in_v8() {
        assert_eq!(
            pretty(r#"{"b":1,"10":2,"a":{"2":0,"x":0,"1":0},"01":3,"4294967295":4,"0":5}"#),
            "{\n  \"0\": 5,\n  \"10\": 2,\n  \"b\": 1,\n  \"a\": {\n    \"1\": 0,\n    \"2\": 0,\n    \"x\": 0\n  },\n  \"01\": 3,\n  \"4294967295\": 4\n}"
        );
    }

    #[test]
    fn key_order_is_kept() {
        assert_eq!(
            pretty(r#"{"z":1,"a":2,"m":3}"#),
            "{\n  \"z\": 1,\n  \"a\": 2,\n  \"m\": 3\n}"
        );
    }

    #[test]
    fn numbers_print_as_v8_prints_them() {
        for (input, expected) in [
            ("1.0", "1"),
            ("-0.0", "0"),
            ("0.1", "0.1"),
            ("1e21", "1e+21"),
            ("1e-7", "1e-7"),
            ("123456789012345680000", "123456789012345680000"),
            ("12345678901234567890", "12345678901234567000"),
            ("-12345678901234567890", "-12345678901234567000"),
            ("9007199254740991", "9007199254740991"),
            ("9007199254740993", "9007199254740992"),
            ("1.5e300", "1.5e+300"),
            ("2.5E-3", "0.0025"),
        ] {
            assert_eq!(pretty(input), expected, "for {input}");
        }
    }

    #[test]
    fn strings_escape_as_v8_escapes_them() {
        let value = json!("q\"b\\s/\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}\u{2028}é😀");
        assert_eq!(
            to_pretty_string(&value).expect("serialises"),
            "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}\u{2028}é😀\""
        );
    }

    #[test]
    fn lone_surrogates_and_bad_utf8_parse_as_node_reads_them() {
        let split_emoji = br#"{"a":"x\ud83d","b":"\udc00y","c":"\ud83d\ude00","d":"\\ud83d"}"#;
        let v: Value = from_slice_lossy(split_emoji).expect("parses");
        assert_eq!(v["a"], "x\u{fffd}");
        assert_eq!(v["b"], "\u{fffd}y");
        assert_eq!(v["c"], "😀");
        assert_eq!(v["d"], "\\ud83d");
        let bad_utf8 = b"{\"a\":\"\xff\"}";
        assert_eq!(
            from_slice_lossy::<Value>(bad_utf8).expect("parses")["a"],
            "\u{fffd}"
        );
        assert!(from_slice_lossy::<Value>(b"{\"a\":").is_err());
    }
}
