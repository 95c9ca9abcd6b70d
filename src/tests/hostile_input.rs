//! Hostile input for the parsers, the event mapper and the JSON writer
//! (issue 5): arbitrary bytes and arbitrary JSON never panic, deep nesting
//! is refused cleanly, and what the writer writes reads back the same.

use crate::js_json::{from_slice_lossy, to_pretty_string};
use crate::mission_control::events::event_to_status_update;
use crate::mission_control::session::{build_dispatch_payload, queued_missions};
use crate::mission_control::status::{apply_one, StatusUpdate};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Arbitrary JSON, with keys and strings that look like what we handle.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        prop_oneof![
            Just("queued"),
            Just("mission.started"),
            Just("mission.completed"),
            Just("executor.resync"),
            Just("10"),
            Just("")
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        let key = prop_oneof![
            any::<String>(),
            prop_oneof![
                Just("id"),
                Just("status"),
                Just("event"),
                Just("mission_id"),
                Just("data"),
                Just("missions"),
                Just("0"),
                Just("7")
            ]
            .prop_map(str::to_owned),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_parse_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = from_slice_lossy::<Value>(&bytes);
    }

    #[test]
    fn written_json_reads_back_the_same(value in json_value()) {
        let text = to_pretty_string(&value).expect("any value serialises");
        let back: Value = from_slice_lossy(text.as_bytes()).expect("what we write parses");
        // Key order may differ (V8 order puts index keys first); the values do not.
        prop_assert_eq!(normalise(&back), normalise(&value));
        prop_assert!(!text.ends_with('\n'));
    }

    #[test]
    fn the_event_mapper_takes_anything(event in json_value()) {
        if let Some(update) = event_to_status_update(&event) {
            prop_assert!(update.status.is_string());
        }
    }

    #[test]
    fn session_helpers_take_anything(session in json_value(), mission in json_value(), update in json_value()) {
        for m in queued_missions(&session) {
            let payload = build_dispatch_payload(m, &json!("s"));
            prop_assert!(payload.get("metadata").is_some());
        }
        let _ = build_dispatch_payload(&mission, &mission);
        let update = StatusUpdate {
            mission_id: update.get("id").cloned().unwrap_or(Value::Null),
            status: json!("assigned"),
            transition_from: Some(json!("queued")),
            ..StatusUpdate::default()
        };
        let mut session = session;
        let _ = apply_one(&mut session, &update);
    }
}

/// Values compared without regard to key order (and -0 as 0, as JS prints it).
fn normalise(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<_> = map.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                keys.into_iter()
                    .map(|(k, v)| (k.clone(), normalise(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        Value::Number(n) => n
            .as_f64()
            .map_or(value.clone(), |f| json!(if f == 0.0 { 0.0 } else { f })),
        other => other.clone(),
    }
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let err = from_slice_lossy::<Value>(deep.as_bytes()).expect_err("too deep");
    assert!(err.to_string().contains("nested too deeply"), "{err}");
    let err = crate::js_json::parse(deep.as_bytes()).expect_err("too deep");
    assert!(err.to_string().contains("nested too deeply"), "{err}");
    let event = format!("{{\"event\":\"mission.started\",\"mission_id\":\"m\",\"data\":{deep}}}");
    assert!(from_slice_lossy::<Value>(event.as_bytes()).is_err());
}

#[test]
fn huge_strings_and_duplicate_keys() {
    let huge = format!(
        "{{\"id\":\"s\",\"note\":\"{}\",\"id\":\"t\"}}",
        "x".repeat(8 * 1024 * 1024)
    );
    let value: Value = from_slice_lossy(huge.as_bytes()).expect("parses");
    assert_eq!(
        value["id"], "t",
        "the last duplicate wins, as in JSON.parse"
    );
    let keys: Vec<_> = value.as_object().expect("object").keys().cloned().collect();
    assert_eq!(
        keys,
        ["id", "note"],
        "in the first one's place, as in JSON.parse"
    );
}
