//! A strict parser of the Prometheus text format 0.0.4, for the tests of `/metrics`: every
//! line is a `# HELP`, a `# TYPE` or a sample; names and labels are checked character by
//! character; a family's samples follow its `# TYPE` line, together; no series twice.

use std::collections::{BTreeMap, HashSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (`_bucket`, `_sum`, `_count` included).
    pub name: String,
    /// Labels in line order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// One metric family.
#[derive(Debug, Clone, Default)]
pub struct Family {
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub kind: String,
    /// HELP text.
    pub help: Option<String>,
    /// Samples.
    pub samples: Vec<Sample>,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    matches!(chars.next(), Some(c) if first_ok(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// Parses `name{labels} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line:?}"))?;
    let name = &line[..name_end];
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut r = r;
        loop {
            if let Some(after) = r.strip_prefix('}') {
                r = after;
                break;
            }
            let eq = r.find('=').ok_or("label without =")?;
            let key = &r[..eq];
            if !is_name(key, false) || key.starts_with("__") {
                return Err(format!("bad label name {key:?}"));
            }
            r = r[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some((_, '\n')) | None => return Err("unterminated label value".into()),
                    Some((_, c)) => value.push(c),
                }
            };
            if labels.iter().any(|(k, _): &(String, String)| k == key) {
                return Err(format!("label {key} twice"));
            }
            labels.push((key.to_owned(), value));
            r = &r[end + 1..];
            if let Some(after) = r.strip_prefix(',') {
                r = after;
            } else if !r.starts_with('}') {
                return Err(format!("expected , or }} in {line:?}"));
            }
        }
        rest = r;
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before the value: {line:?}"))?;
    let mut parts = rest.split(' ');
    let value = parse_value(parts.next().unwrap_or(""))?;
    if let Some(ts) = parts.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("bad timestamp {ts:?}"))?;
    }
    if parts.next().is_some() {
        return Err(format!("trailing fields: {line:?}"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The family a sample name belongs to, given the family `kind` of `family`.
fn belongs(sample: &str, family: &str, kind: &str) -> bool {
    match kind {
        "histogram" => [
            format!("{family}_bucket"),
            format!("{family}_sum"),
            format!("{family}_count"),
        ]
        .iter()
        .any(|n| n == sample),
        _ => sample == family,
    }
}

/// Parses a whole exposition into its families, by name.
pub fn parse(text: &str) -> Result<BTreeMap<String, Family>, String> {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut closed = HashSet::new();
    let mut series = HashSet::new();
    if !text.ends_with('\n') {
        return Err("the exposition does not end with a newline".into());
    }
    for (no, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}", no + 1);
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        if let Some(c) = line.strip_prefix("# ") {
            let (word, rest) = c.split_once(' ').unwrap_or((c, ""));
            let (name, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            if !matches!(word, "HELP" | "TYPE") {
                continue; // a plain comment
            }
            if !is_name(name, true) {
                return Err(err(format!("bad family name {name:?}")));
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    closed.insert(c);
                }
                if closed.contains(name) {
                    return Err(err(format!("{name} appears again after other families")));
                }
                current = Some(name.to_owned());
            }
            let f = families.entry(name.to_owned()).or_default();
            if word == "TYPE" {
                if !f.kind.is_empty() || !f.samples.is_empty() {
                    return Err(err(format!("TYPE of {name} late or twice")));
                }
                if !matches!(
                    arg,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ) {
                    return Err(err(format!("bad type {arg:?}")));
                }
                f.kind = arg.to_owned();
            } else {
                if f.help.is_some() {
                    return Err(err(format!("HELP of {name} twice")));
                }
                f.help = Some(arg.to_owned());
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let s = parse_sample(line).map_err(err)?;
        let fam = current
            .clone()
            .ok_or_else(|| err("sample before any TYPE".into()))?;
        let f = families
            .get_mut(&fam)
            .ok_or_else(|| err("no family".into()))?;
        if f.kind.is_empty() {
            return Err(err(format!("sample of {fam} before its TYPE")));
        }
        if !belongs(&s.name, &fam, &f.kind) {
            return Err(err(format!(
                "{} is not of family {fam} ({})",
                s.name, f.kind
            )));
        }
        if f.kind == "counter" && (s.value.is_nan() || s.value < 0.0) {
            return Err(err(format!("counter {} is {}", s.name, s.value)));
        }
        let mut key: Vec<_> = s.labels.clone();
        key.sort();
        if !series.insert((s.name.clone(), key)) {
            return Err(err(format!("series {} twice", s.name)));
        }
        f.samples.push(s);
    }
    Ok(families)
}

/// Checks every histogram series: buckets cumulative in `le` order, a `+Inf` bucket equal to
/// `_count`, a `_sum`. Returns the series checked.
pub fn check_histograms(families: &BTreeMap<String, Family>) -> Result<usize, String> {
    let mut checked = 0;
    for (name, f) in families.iter().filter(|(_, f)| f.kind == "histogram") {
        type Key = Vec<(String, String)>;
        let mut buckets: BTreeMap<Key, Vec<(f64, f64)>> = BTreeMap::new();
        let mut counts: BTreeMap<Key, f64> = BTreeMap::new();
        let mut sums: BTreeMap<Key, f64> = BTreeMap::new();
        for s in &f.samples {
            let mut key: Key = s
                .labels
                .iter()
                .filter(|(k, _)| k != "le")
                .cloned()
                .collect();
            key.sort();
            if s.name.ends_with("_bucket") {
                let le = s
                    .labels
                    .iter()
                    .find(|(k, _)| k == "le")
                    .ok_or_else(|| format!("{name}: bucket without le"))?;
                buckets
                    .entry(key)
                    .or_default()
                    .push((parse_value(&le.1)?, s.value));
            } else if s.name.ends_with("_count") {
                counts.insert(key, s.value);
            } else {
                sums.insert(key, s.value);
            }
        }
        for (key, mut b) in buckets {
            b.sort_by(|x, y| x.0.total_cmp(&y.0));
            for w in b.windows(2) {
                if w[1].1 < w[0].1 {
                    return Err(format!(
                        "{name}{key:?}: buckets not cumulative at le {}",
                        w[1].0
                    ));
                }
            }
            let inf = b
                .last()
                .filter(|(le, _)| *le == f64::INFINITY)
                .ok_or_else(|| format!("{name}{key:?}: no +Inf bucket"))?
                .1;
            let count = counts
                .get(&key)
                .ok_or_else(|| format!("{name}{key:?}: no _count"))?;
            if inf != *count {
                return Err(format!("{name}{key:?}: +Inf {inf} != count {count}"));
            }
            let sum = sums
                .get(&key)
                .ok_or_else(|| format!("{name}{key:?}: no _sum"))?;
            if sum.is_nan() || *sum < 0.0 {
                return Err(format!("{name}{key:?}: sum {sum}"));
            }
            checked += 1;
        }
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_prometheus_refuses() {
        let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v\\\"w\"} 1\n";
        assert!(parse(ok).is_ok());
        for bad in [
            "a_total 1\n",                                                // no TYPE
            "# TYPE a counter\na{k=\"v} 1\n",                             // unterminated
            "# TYPE a counter\na{1k=\"v\"} 1\n",                          // label name
            "# TYPE a counter\na 1\na 2\n",                               // series twice
            "# TYPE a counter\na -1\n",                                   // negative counter
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n", // split family
            "# TYPE a gauge\nb 1\n",                                      // wrong family
            "# TYPE a gauge\na 1",                                        // no final newline
            "# TYPE a gauge\na  1\n",                                     // two spaces
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn histogram_invariants_are_checked() {
        let h = |b1: u32, inf: u32, count: u32| {
            format!(
                "# TYPE h histogram\nh_bucket{{le=\"1\"}} {b1}\nh_bucket{{le=\"+Inf\"}} {inf}\n\
                 h_sum 0.5\nh_count {count}\n"
            )
        };
        let f = parse(&h(1, 2, 2)).expect("parses");
        assert_eq!(check_histograms(&f), Ok(1));
        assert!(check_histograms(&parse(&h(3, 2, 2)).expect("parses")).is_err());
        assert!(check_histograms(&parse(&h(1, 2, 3)).expect("parses")).is_err());
    }
}
