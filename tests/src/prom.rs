//! Checks of Prometheus text exposition (format 0.0.4), as `GET /metrics` serves it.
//!
//! - [`check_layout`]: the rules a parser does not all enforce: every family has
//!   `# HELP` then `# TYPE`, once, before its samples, and its samples are together;
//!   counters end in `_total`.
//! - [`official_parse`]: the text through the Prometheus project's own Python parser
//!   (`prometheus_client.parser`, Debian's `python3-prometheus-client`, installed by
//!   `scripts/setup.sh`), which rejects bad escapes, names and values; `None` where it
//!   is not installed.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};

/// One sample as the official parser read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`x_total` for a counter `x_total`).
    pub name: String,
    /// Its labels, unescaped.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
    /// Its family's type.
    pub kind: String,
}

/// Checks the layout rules of the module documentation.
pub fn check_layout(text: &str) -> Result<(), String> {
    let mut seen: HashSet<&str> = HashSet::new();
    // The family being written and whether its TYPE came.
    let mut current: Option<(&str, bool)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default();
            if !seen.insert(name) {
                return Err(format!("line {n}: family {name} written twice"));
            }
            current = Some((name, false));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            let (name, kind) = (w.next().unwrap_or_default(), w.next().unwrap_or_default());
            match current {
                Some((f, false)) if f == name => current = Some((f, true)),
                _ => {
                    return Err(format!(
                        "line {n}: TYPE of {name} without its HELP just before"
                    ))
                }
            }
            if !matches!(kind, "counter" | "gauge") {
                return Err(format!("line {n}: type {kind:?}"));
            }
            if kind == "counter" && !name.ends_with("_total") {
                return Err(format!("line {n}: counter {name} does not end in _total"));
            }
        } else if line.starts_with('#') || line.is_empty() {
            return Err(format!("line {n}: unexpected {line:?}"));
        } else {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..end];
            match current {
                Some((f, true)) if f == name => {}
                _ => return Err(format!("line {n}: sample {name} outside its family")),
            }
            let value = line.rsplit(' ').next().unwrap_or_default();
            if value.parse::<f64>().is_err() {
                return Err(format!("line {n}: value {value:?}"));
            }
        }
    }
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("no newline at the end".into());
    }
    Ok(())
}

const PARSER: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
for fam in text_string_to_metric_families(text):
    if not fam.documentation:
        raise ValueError("no HELP for " + fam.name)
    if fam.type not in ("counter", "gauge"):
        raise ValueError("type %s of %s" % (fam.type, fam.name))
    for s in fam.samples:
        labels = "".join("\t%s\t%s" % (k, v.encode("unicode_escape").decode()) for k, v in sorted(s.labels.items()))
        print("%s\t%s\t%r%s" % (fam.type, s.name, s.value, labels))
"#;

/// Debian's Python, where `python3-prometheus-client` installs (a `python3` earlier
/// on `PATH` may be another one).
const PYTHON: &str = "/usr/bin/python3";

/// Parses `text` with the official parser: `None` where it is not installed, else
/// its samples or its error.
pub fn official_parse(text: &str) -> Option<Result<Vec<Sample>, String>> {
    let present = Command::new(PYTHON)
        .args(["-c", "import prometheus_client.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        return None;
    }
    Some(run_parser(text))
}

fn run_parser(text: &str) -> Result<Vec<Sample>, String> {
    let mut child = Command::new(PYTHON)
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut samples = Vec::new();
    for line in stdout.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let [kind, name, value, labels @ ..] = f.as_slice() else {
            return Err(format!("parser output {line:?}"));
        };
        let value: f64 = value
            .parse()
            .map_err(|_| format!("parser value {value:?}"))?;
        let labels = labels
            .chunks(2)
            .map(|kv| match kv {
                [k, v] => Ok(((*k).to_owned(), unescape(v))),
                _ => Err(format!("parser labels in {line:?}")),
            })
            .collect::<Result<_, String>>()?;
        samples.push(Sample {
            name: (*name).to_owned(),
            labels,
            value,
            kind: (*kind).to_owned(),
        });
    }
    Ok(samples)
}

/// Python's `unicode_escape` back (`\\`, `\n`, `\t`, `\xNN`, `\uNNNN`...).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |it: &mut std::str::Chars<'_>, n: usize| {
            let h: String = it.take(n).collect();
            u32::from_str_radix(&h, 16)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('?')
        };
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('x') => out.push(hex(&mut it, 2)),
            Some('u') => out.push(hex(&mut it, 4)),
            Some('U') => out.push(hex(&mut it, 8)),
            Some(c) => out.push(c),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_rules() {
        let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 2\n";
        assert_eq!(check_layout(good), Ok(()));
        for bad in [
            "# TYPE a_total counter\na_total 1\n",
            "# HELP a A.\n# TYPE a counter\na 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\nb_total 1\n",
            "# HELP a_total A.\n# TYPE a_total counter\na_total x\n",
            &format!("{good}{good}"),
        ] {
            assert!(check_layout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape(r#"a\\b\nc"\x01"#), "a\\b\nc\"\u{1}");
    }
}
