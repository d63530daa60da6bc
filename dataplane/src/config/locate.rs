//! From a byte offset to what a user reads: a line number, the entry
//! (`port "vm1"`) and the key (`vlans.20`).
//!
//! The `toml` crate reports syntax and type errors with a byte span but no key
//! path we can read, so for those we walk the spanned document tree
//! ([`toml::de::DeTable`]) and find the key whose name or value covers the
//! span. Validation errors know their key already and only need the line.

use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::error::{ConfigError, ErrorKind};

/// The top-level arrays of tables whose elements are named entries.
pub(super) const NAMED_ENTRIES: &[&str] = &["network", "port", "physnet"];

/// 1-based line of byte `offset` in `text` (offsets past the end count as the last line).
pub(super) fn line_of(text: &str, offset: usize) -> u32 {
    let bytes = text.as_bytes();
    let end = offset.min(bytes.len());
    let newlines = bytes
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    u32::try_from(newlines).map_or(u32::MAX, |n| n.saturating_add(1))
}

/// How an entry of a top-level array of tables is named in messages: `port "vm1"`
/// when it has a usable `name`, else `port #3` (1-based).
pub(super) fn entry_context(section: &str, index: usize, name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() && NAMED_ENTRIES.contains(&section) => format!("{section} {n:?}"),
        _ => format!("{section} #{}", index + 1),
    }
}

/// 1-based line of `key` in the top-level table `section` of `text` (`[switch]`
/// `workers`), or of the section's header when the key is absent; `None` when the text
/// has neither or does not parse.
pub(super) fn key_line(text: &str, section: &str, key: &str) -> Option<u32> {
    let doc = DeTable::parse(text).ok()?;
    let (sk, sv) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == section)?;
    let span = sv
        .get_ref()
        .as_table()
        .and_then(|t| t.iter().find(|(k, _)| k.get_ref() == key))
        .map_or_else(|| sk.span(), |(k, _)| k.span());
    Some(line_of(text, span.start))
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn contains(span: &Range<usize>, pos: usize) -> bool {
    span.start <= pos && pos < span.end.max(span.start + 1)
}

/// The deepest key path whose key or value covers `pos`.
fn find_path(table: &DeTable<'_>, pos: usize, path: &mut Vec<Step>) -> bool {
    for (k, v) in table.iter() {
        path.push(Step::Key(k.get_ref().to_string()));
        if contains(&k.span(), pos) || find_in_value(v, pos, path) {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(v: &Spanned<DeValue<'_>>, pos: usize, path: &mut Vec<Step>) -> bool {
    match v.get_ref() {
        DeValue::Table(t) => find_path(t, pos, path) || contains(&v.span(), pos),
        DeValue::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                path.push(Step::Index(i));
                if find_in_value(e, pos, path) {
                    return true;
                }
                path.pop();
            }
            contains(&v.span(), pos)
        }
        _ => contains(&v.span(), pos),
    }
}

/// The `name` string of element `index` of top-level array `section`, if any.
fn entry_name<'a>(doc: &'a DeTable<'_>, section: &str, index: usize) -> Option<&'a str> {
    let (_, arr) = doc.iter().find(|(k, _)| k.get_ref() == section)?;
    let elem = arr.get_ref().as_array()?.get(index)?;
    let (_, name) = elem
        .get_ref()
        .as_table()?
        .iter()
        .find(|(k, _)| k.get_ref() == "name")?;
    name.get_ref().as_str()
}

/// Splits a key path into the entry it is in and the dotted key below the entry.
fn split_path(doc: &DeTable<'_>, path: &[Step]) -> (Option<String>, Option<String>) {
    fn dotted(steps: &[Step]) -> Option<String> {
        let parts: Vec<String> = steps
            .iter()
            .map(|s| match s {
                Step::Key(k) => k.clone(),
                Step::Index(i) => i.to_string(),
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("."))
    }
    match path {
        [Step::Key(s), rest @ ..] if s == "switch" || s == "underlay" || s == "metrics" => {
            (Some(format!("[{s}]")), dotted(rest))
        }
        [Step::Key(s), Step::Index(i), rest @ ..] => {
            let name = entry_name(doc, s, *i);
            (Some(entry_context(s, *i, name)), dotted(rest))
        }
        _ => (None, dotted(path)),
    }
}

/// Serde's and toml's type names in the words of the TOML spec.
fn plain_words(message: &str) -> String {
    message
        .replace("expected i64", "expected an integer")
        .replace("expected a map", "expected a table")
        .replace("expected a sequence", "expected an array")
        .replace("invalid type: map", "invalid type: table")
        .replace("invalid type: sequence", "invalid type: array")
        .replace("floating point", "float")
}

/// Extracts `X` from serde's "missing field `X`" / "unknown field `X`, ...".
fn backquoted_after<'m>(message: &'m str, prefix: &str) -> Option<(&'m str, &'m str)> {
    let rest = message.strip_prefix(prefix)?;
    let end = rest.find('`')?;
    let after = rest.get(end + 1..)?.trim_start_matches([',', ' ']);
    Some((rest.get(..end)?, after))
}

/// Turns an error of the `toml` crate into ours. `syntax` says whether it came
/// from parsing the text (no tree to look keys up in) or from deserializing it.
pub(super) fn toml_error(
    file: &str,
    text: &str,
    err: &toml::de::Error,
    syntax: bool,
) -> ConfigError {
    let message = plain_words(err.message());
    let span = err.span();
    let line = Some(span.as_ref().map_or(1, |s| line_of(text, s.start)));
    let mut e = ConfigError {
        file: file.to_owned(),
        line,
        context: None,
        key: None,
        kind: ErrorKind::Invalid(message.clone()),
    };
    if syntax {
        if message == "duplicate key" {
            e.key = span
                .and_then(|s| text.get(s))
                .map(|k| k.trim_matches(['"', '\'']).to_owned());
        }
        e.kind = ErrorKind::Syntax(message);
        return e;
    }
    // The text parsed once already, so this succeeds; if not, keep what we have.
    if let (Ok(doc), Some(span)) = (DeTable::parse(text), span) {
        let mut path = Vec::new();
        if find_path(doc.get_ref(), span.start, &mut path) {
            (e.context, e.key) = split_path(doc.get_ref(), &path);
        }
    }
    if let Some((field, _)) = backquoted_after(&message, "missing field `") {
        let parent = e.key.take();
        e.key = Some(match parent {
            Some(p) => format!("{p}.{field}"),
            None => field.to_owned(),
        });
        e.kind = ErrorKind::MissingKey;
    } else if let Some((_, expected)) = backquoted_after(&message, "unknown field `") {
        e.kind = ErrorKind::UnknownKey(expected.to_owned());
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let t = "a\nbc\n\nd";
        assert_eq!(line_of(t, 0), 1);
        assert_eq!(line_of(t, 1), 1);
        assert_eq!(line_of(t, 2), 2);
        assert_eq!(line_of(t, 5), 3);
        assert_eq!(line_of(t, 6), 4);
        assert_eq!(line_of(t, 100), 4);
    }

    #[test]
    fn backquotes() {
        assert_eq!(
            backquoted_after("unknown field `x`, expected `a` or `b`", "unknown field `"),
            Some(("x", "expected `a` or `b`"))
        );
        assert_eq!(
            backquoted_after("missing field `name`", "missing field `"),
            Some(("name", ""))
        );
        assert_eq!(backquoted_after("other", "missing field `"), None);
    }

    #[test]
    fn paths() {
        let text = "[switch]\nworkers = 1\n[[port]]\nname = \"a\"\nvlans = { 10 = \"x\" }\n";
        let doc = DeTable::parse(text).unwrap();
        let pos = text.find("\"x\"").unwrap();
        let mut path = Vec::new();
        assert!(find_path(doc.get_ref(), pos, &mut path));
        assert_eq!(
            split_path(doc.get_ref(), &path),
            (Some("port \"a\"".into()), Some("vlans.10".into()))
        );
        let pos = text.find("workers").unwrap();
        let mut path = Vec::new();
        assert!(find_path(doc.get_ref(), pos, &mut path));
        assert_eq!(
            split_path(doc.get_ref(), &path),
            (Some("[switch]".into()), Some("workers".into()))
        );
    }
}
