//! JS strings over Rust strings: a JS string is UTF-16 and may hold a lone
//! surrogate, which a Rust `String` cannot. The parser stores one as
//! [`WTF_MARK`] followed by a private-use character naming the unit (and a
//! literal `WTF_MARK` as two of them); [`units`] reads them back. The
//! string operations here count UTF-16 units, as JS counts.

/// Marks an encoded UTF-16 unit inside a Rust string (see the module docs).
pub(crate) const WTF_MARK: char = '\u{10FFFF}';
/// Lone surrogate `u` is stored as `WTF_MARK` + `char(UNIT_BASE + (u - 0xD800))`.
const UNIT_BASE: u32 = 0xF_0000;

pub(super) fn push_char(out: &mut String, c: char) {
    if c == WTF_MARK {
        out.push(WTF_MARK);
    }
    out.push(c);
}

/// Store one lone surrogate unit in `out` (see the module docs).
pub(crate) fn push_unit(out: &mut String, unit: u32) {
    out.push(WTF_MARK);
    out.push(char::from_u32(UNIT_BASE + (unit - 0xD800)).unwrap_or('\u{FFFD}'));
}

/// One JS character of a stored string: a Unicode scalar or a lone surrogate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Char(char),
    Lone(u16),
}

/// The JS characters of `s`, decoding what [`parse`] encoded.
pub(crate) fn units(s: &str) -> impl Iterator<Item = Unit> + '_ {
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

/// `s.slice(0, n)` in UTF-16 code units, as JS slices: a cut through a
/// surrogate pair keeps its first half (a lone surrogate).
pub(crate) fn slice_utf16(s: &str, n: usize) -> String {
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
pub(crate) fn utf16_units(s: &str) -> Vec<String> {
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
