use super::strings::units;
use super::*;
use serde_json::json;

fn pretty(text: &str) -> String {
    to_pretty_string(&parse(text.as_bytes()).expect("test input is JSON")).expect("serialises")
}

fn compact(text: &str) -> String {
    to_compact_string(&parse(text.as_bytes()).expect("test input is JSON"))
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
    assert_eq!(
        compact(r#" { "a" : [ 1 , {"b":true} ] , "c" : "d" } "#),
        r#"{"a":[1,{"b":true}],"c":"d"}"#
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
fn key_order_is_kept_and_a_repeated_key_keeps_its_first_place() {
    assert_eq!(
        pretty(r#"{"z":1,"a":2,"m":3}"#),
        "{\n  \"z\": 1,\n  \"a\": 2,\n  \"m\": 3\n}"
    );
    assert_eq!(compact(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
}

#[test]
fn numbers_read_and_print_as_v8_does() {
    for (input, expected) in [
        ("1.0", "1"),
        ("-0.0", "0"),
        ("-0", "0"),
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
        ("1e400", "null"),
        ("-1e400", "null"),
        ("[1e-400]", "[\n  0\n]"),
        ("0.30000000000000004", "0.30000000000000004"),
    ] {
        assert_eq!(pretty(input), expected, "for {input}");
    }
    // 1 and 1.0 are one value in JS, and so here.
    assert_eq!(parse(b"1.0").expect("parses"), parse(b"1").expect("parses"));
}

#[test]
fn strings_escape_as_v8_escapes_them() {
    let value = json!("q\"b\\s/\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f}\u{2028}é😀");
    assert_eq!(
        to_pretty_string(&value).expect("serialises"),
        "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}\u{2028}é😀\""
    );
    assert_eq!(compact(r#""\u00e9\/\u0041""#), "\"é/A\"");
}

#[test]
fn lone_surrogates_survive_a_read_and_a_write() {
    let text = r#"{"a":"x\ud83d","b":"\udc00y","c":"\ud83d\ude00","d":"\\ud83d","e":"\udbff\udfff","f":"\ud800\ud800"}"#;
    let v = parse(text.as_bytes()).expect("parses");
    assert_eq!(v["c"], "😀");
    assert_eq!(v["d"], "\\ud83d");
    assert_ne!(v["a"], v["b"]);
    assert_eq!(
        to_compact_string(&v),
        text.replace(r#""\ud83d\ude00""#, "\"😀\"")
            .replace(r#""\udbff\udfff""#, "\"\u{10FFFF}\"")
    );
    // The mark itself, raw in the input, comes back as itself.
    let raw = "[\"\u{10FFFF}z\"]";
    assert_eq!(compact(raw), raw);
    let v = parse(raw.as_bytes()).expect("parses");
    assert_eq!(units(v[0].as_str().expect("string")).count(), 2);
}

#[test]
fn invalid_utf8_reads_as_nodes_decoder_makes_it() {
    let bad = b"{\"a\":\"\xff\"}";
    assert_eq!(parse(bad).expect("parses")["a"], "\u{fffd}");
}

#[test]
fn what_json_parse_refuses_is_refused() {
    for bad in [
        "",
        " ",
        "{",
        "[1,]",
        "{\"a\":1,}",
        "01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "'a'",
        "\"a",
        "\"\t\"",
        "[1] x",
        "{a:1}",
        "nul",
        "\"\\x\"",
        "\"\\u12\"",
        "NaN",
        "Infinity",
        "\u{feff}{}",
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad:?} should not parse");
    }
    for good in [" 1 ", "\n[\r\n]\t", "0", "true", "null"] {
        assert!(parse(good.as_bytes()).is_ok(), "{good:?} should parse");
    }
}

#[test]
fn deep_nesting_is_read_and_written_within_a_small_stack() {
    let depth = MAX_DEPTH;
    let text = format!(
        "{}1{}",
        "{\"a\":[".repeat(depth / 2),
        "]}".repeat(depth / 2)
    );
    // The writers recurse once per level; 1 MiB is half a tokio thread's stack.
    let worker = std::thread::Builder::new()
        .stack_size(if cfg!(debug_assertions) {
            8 << 20
        } else {
            1 << 20
        })
        .spawn(move || {
            let value = parse(text.as_bytes()).expect("parses");
            let copy = value.clone();
            assert_eq!(to_compact_string(&copy), text);
            let pretty = to_pretty_string(&value).expect("writes");
            assert!(pretty.len() > text.len());
        })
        .expect("thread");
    worker.join().expect("no overflow");
    let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert!(parse(too_deep.as_bytes()).is_err());
    let typed = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(from_slice_lossy::<Value>(typed.as_bytes()).is_err());
}

#[test]
fn slices_count_utf16_units_and_may_cut_a_pair() {
    assert_eq!(slice_utf16("abc", 2), "ab");
    let cut = slice_utf16("a😀b", 2);
    assert_eq!(to_compact_string(&Value::String(cut)), r#""a\ud83d""#);
    assert_eq!(slice_utf16("a😀b", 3), "a😀");
    let units: Vec<_> = utf16_units("a😀")
        .into_iter()
        .map(|u| to_compact_string(&Value::String(u)))
        .collect();
    assert_eq!(units, [r#""a""#, r#""\ud83d""#, r#""\ude00""#]);
}

#[test]
fn truthiness_is_javascripts() {
    for falsy in [json!(null), json!(false), json!(0), json!(-0.0), json!("")] {
        assert!(!truthy(&falsy), "{falsy}");
    }
    for t in [json!(true), json!(1), json!("0"), json!([]), json!({})] {
        assert!(truthy(&t), "{t}");
    }
}
