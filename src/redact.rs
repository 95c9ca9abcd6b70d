//! Secrets as logs and `onState` show them (§9.8): every `token=` value and
//! the credentials of every URL (`http://user:pass@host`) become `***`.
//! Applied to every log line a JS logger receives, whatever wrote it.

use serde_json::Value;

/// `text` with its secrets hidden: every `token=` value replaced by `***`,
/// as the JS `s.replace(/token=[^&\s]*/g, 'token=***')` does, and the user
/// and password of every `scheme://user:pass@host` URL by one `***`.
pub(crate) fn redact(text: &str) -> String {
    redact_credentials(&redact_tokens(text))
}

/// Every `token=` value replaced by `***`.
fn redact_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("token=") {
        let start = at + "token=".len();
        out.push_str(&rest[..start]);
        out.push_str("***");
        let value = &rest[start..];
        let end = value
            .find(|c: char| c == '&' || is_js_space(c))
            .unwrap_or(value.len());
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// The user info of every URL (`//user:pass@` → `//***@`).
fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = at + "://".len();
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        // The authority ends at the path, query, fragment or the text's end.
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | ')') || is_js_space(c)
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(user_end) => {
                out.push_str("***");
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every string in `value` (keys too) with its secrets hidden.
pub(crate) fn redact_json(value: &mut Value) {
    match value {
        Value::String(s) if may_hold_secret(s) => *s = redact(s),
        Value::Array(items) => items.iter_mut().for_each(redact_json),
        Value::Object(map) => {
            if map.keys().any(|k| may_hold_secret(k)) {
                let entries = std::mem::take(map);
                for (key, mut item) in entries {
                    redact_json(&mut item);
                    map.insert(redact(&key), item);
                }
            } else {
                map.values_mut().for_each(redact_json);
            }
        }
        _ => {}
    }
}

/// A quick test that spares the common string a copy.
fn may_hold_secret(text: &str) -> bool {
    text.contains("token=") || (text.contains("://") && text.contains('@'))
}

/// JS's `\s`: `WhiteSpace` and `LineTerminator` (not quite `char::is_whitespace`).
fn is_js_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tokens_are_hidden() {
        assert_eq!(
            redact("ws://h/ws/executors/e?token=s3cr3t"),
            "ws://h/ws/executors/e?token=***"
        );
        assert_eq!(redact("ws://h/x?token=a&b=c"), "ws://h/x?token=***&b=c");
        assert_eq!(redact("ws://h/x"), "ws://h/x");
        assert_eq!(
            redact("open ws://h?token=a b token=c\td&token="),
            "open ws://h?token=*** b token=***\td&token=***"
        );
    }

    #[test]
    fn url_credentials_are_hidden() {
        assert_eq!(
            redact("http://user:pass@h:7337/api"),
            "http://***@h:7337/api"
        );
        assert_eq!(redact("https://tok@h"), "https://***@h");
        assert_eq!(
            redact(
                "error sending request for url (http://u:p@127.0.0.1:9/x) and ws://a:b@h?token=t"
            ),
            "error sending request for url (http://***@127.0.0.1:9/x) and ws://***@h?token=***"
        );
        // A password holding `@` or `/`-free oddities: everything up to the last `@`.
        assert_eq!(redact("http://u:p@ss@h/"), "http://***@h/");
        // An `@` in the path is not a credential.
        assert_eq!(redact("http://h/a@b"), "http://h/a@b");
        assert_eq!(
            redact("mailto:a@b and no scheme a@b"),
            "mailto:a@b and no scheme a@b"
        );
    }

    #[test]
    fn every_string_of_a_log_line_is_redacted() {
        let mut meta = json!({
            "aiwgServeUrl": "http://user:pw@h",
            "nested": [{"url": "ws://h/ws/executors/e?token=s"}, 3, null],
            "http://k:v@h": "key",
            "plain": "left as it is",
        });
        redact_json(&mut meta);
        assert_eq!(
            meta,
            json!({
                "aiwgServeUrl": "http://***@h",
                "nested": [{"url": "ws://h/ws/executors/e?token=***"}, 3, null],
                "http://***@h": "key",
                "plain": "left as it is",
            })
        );
    }
}
