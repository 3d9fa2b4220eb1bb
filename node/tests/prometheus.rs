//! The metrics through a real Prometheus (the Debian `prometheus` binary): it scrapes every
//! node of a short devnet each second; afterwards the test asks its HTTP API for every metric
//! the Grafana dashboard (`monitoring/grafana/ssv-node.json`) uses, at the end of the counted
//! slots, while the nodes still ran, and checks values against the devnet's own summary.
//!
//! About 40 s: Prometheus start-up, a 6 s devnet start delay, 4 slots of 3 s, 2 settle slots.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDir;

/// Where Debian's `prometheus` package installs the server.
const PROMETHEUS: &str = "/usr/bin/prometheus";
/// The dashboard, whose metric names the test checks.
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../monitoring/grafana/ssv-node.json"
);
const SLOTS: u64 = 4;
const SLOT_MS: u64 = 3000;
/// How long before a slot boundary the counters are read: after the previous slot's
/// submissions, before the next slot's.
const BEFORE_BOUNDARY_MS: u64 = 200;
/// Metrics that count faults: a healthy run may leave them without a series (the node writes
/// a series per refusal reason once one happens). They must still be declared on `/metrics`.
const FAULT_ONLY: &[&str] = &[
    "ssv_p2p_message_validations_rejected_total",
    "ssv_p2p_message_validations_ignored_total",
];

/// Kills a child process when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A GET over HTTP/1.0 (so that the server sends the body whole, without chunks); returns
/// the status and the body.
fn get(addr: &str, path_and_query: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query at `time` (seconds): the result vector as (labels, value) pairs.
fn query(prom: &str, expr: &str, time: f64) -> Vec<(serde_json::Value, f64)> {
    let path = format!("/api/v1/query?query={}&time={time:.3}", urlencode(expr));
    let (status, body) = get(prom, &path).expect("Prometheus answers");
    assert_eq!(status, 200, "{expr}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
    assert_eq!(v["status"], "success", "{expr}: {v}");
    let result = &v["data"]["result"];
    match v["data"]["resultType"].as_str() {
        Some("vector") => result
            .as_array()
            .expect("vector")
            .iter()
            .map(|s| {
                let value = s["value"][1]
                    .as_str()
                    .and_then(|x| x.parse::<f64>().ok())
                    .expect("sample value");
                (s["metric"].clone(), value)
            })
            .collect(),
        Some("scalar") => vec![(
            serde_json::Value::Null,
            result[1]
                .as_str()
                .and_then(|x| x.parse().ok())
                .expect("scalar"),
        )],
        other => panic!("{expr}: result type {other:?}"),
    }
}

/// The one value of a query that aggregates to a single sample.
fn scalar(prom: &str, expr: &str, time: f64) -> f64 {
    let r = query(prom, expr, time);
    assert_eq!(r.len(), 1, "{expr} at {time}: {r:?}");
    r[0].1
}

/// Every PromQL expression of the dashboard's panels, with Grafana's variables filled in.
fn dashboard_exprs(dashboard: &serde_json::Value) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x.as_str()) {
                        ("expr", Some(e)) => out.push(e.replace("$instance", ".*")),
                        _ => walk(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// The metric names a PromQL expression (or a Grafana `label_values(metric, label)` query)
/// selects: identifiers outside label matchers and grouping clauses that are not functions,
/// keywords or durations.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "by",
        "without",
        "rate",
        "increase",
        "irate",
        "histogram_quantile",
        "label_values",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "instance",
        "le",
    ];
    // Drop `{...}` matchers, `[...]` ranges and `by (...)` / `without (...)` groupings.
    let mut cleaned = String::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            _ if depth > 0 => {}
            _ => cleaned.push(c),
        }
    }
    for kw in ["by", "without"] {
        while let Some(at) = cleaned.find(&format!("{kw} (")) {
            let end = cleaned[at..]
                .find(')')
                .map_or(cleaned.len(), |e| at + e + 1);
            cleaned.replace_range(at..end, " ");
        }
    }
    let mut names = BTreeSet::new();
    let bytes: Vec<char> = cleaned.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_alphabetic() || bytes[i] == '_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == '_') {
                i += 1;
            }
            let word: String = bytes[start..i].iter().collect();
            let preceded_by_digit = start > 0 && bytes[start - 1].is_ascii_digit();
            let next = bytes[i..].iter().find(|c| !c.is_whitespace());
            if !WORDS.contains(&word.as_str()) && !preceded_by_digit && next != Some(&'(') {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The `metrics on http://ADDR/metrics` address of each node log under `data` (`op<ID>/node.log`).
fn metrics_addrs(data: &Path) -> Vec<String> {
    let Ok(dirs) = std::fs::read_dir(data) else {
        return Vec::new();
    };
    let mut addrs = Vec::new();
    for d in dirs.flatten() {
        let log = d.path().join("node.log");
        let Ok(text) = std::fs::read_to_string(&log) else {
            continue;
        };
        if let Some(at) = text.find("metrics on http://") {
            let rest = &text[at + "metrics on http://".len()..];
            let addr: String = rest.chars().take_while(|c| *c != '/').collect();
            addrs.push(addr);
        }
    }
    addrs.sort();
    addrs
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn write_targets(path: &Path, addrs: &[String]) {
    let body = serde_json::json!([{ "targets": addrs, "labels": { "job": "ssv-node" } }]);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body.to_string()).expect("targets written");
    std::fs::rename(&tmp, path).expect("targets renamed");
}

#[test]
fn prometheus_scrapes_every_dashboard_metric_of_a_devnet() {
    assert!(
        Path::new(PROMETHEUS).exists(),
        "{PROMETHEUS} is missing: install the Debian package `prometheus` \
         (apt-get install prometheus; see README \"Set-up\")"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).expect("dashboard readable"))
            .expect("dashboard is JSON");
    let exprs = dashboard_exprs(&dashboard);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut names: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for q in dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| v["query"].as_str())
    {
        if q.starts_with("label_values(") {
            names.extend(metric_names(q));
        }
    }
    assert!(
        names.contains("ssv_runner_consensus_duration_seconds_bucket")
            && names.contains("process_cpu_seconds_total"),
        "{names:?}"
    );

    let tmp = TestDir::new("prometheus");
    let targets = tmp.0.join("targets.json");
    write_targets(&targets, &[]);
    let config = tmp.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: ssv-node\n    file_sd_configs:\n      - files: ['{}']\n        \
             refresh_interval: 1s\n",
            targets.display()
        ),
    )
    .expect("config written");
    let prom = format!("127.0.0.1:{}", free_port());
    let prom_log = std::fs::File::create(tmp.0.join("prometheus.log")).expect("log file");
    let _prometheus = Reaped(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.0.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(prom_log.try_clone().expect("log file"))
            .stderr(prom_log)
            .spawn()
            .expect("start prometheus"),
    );
    let ready_by = Instant::now() + Duration::from_secs(30);
    while !matches!(get(&prom, "/-/ready"), Ok((200, _))) {
        assert!(
            Instant::now() < ready_by,
            "Prometheus not ready in 30 s: {}",
            std::fs::read_to_string(tmp.0.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let data = tmp.0.join("data");
    let json = tmp.0.join("summary.json");
    let out_path: PathBuf = tmp.0.join("devnet.out");
    let out = std::fs::File::create(&out_path).expect("devnet output file");
    let mut devnet = Reaped(
        Command::new(env!("CARGO_BIN_EXE_ssv-node"))
            .args([
                "devnet",
                "--operators",
                "4",
                "--validators",
                "8",
                "--all-duties",
            ])
            .args([
                "--slots",
                &SLOTS.to_string(),
                "--slot-ms",
                &SLOT_MS.to_string(),
            ])
            .arg("--data-dir")
            .arg(&data)
            .arg("--json-summary")
            .arg(&json)
            .env_remove("RUST_BACKTRACE")
            .stdout(out.try_clone().expect("output file"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("start ssv-node devnet"),
    );
    // Point Prometheus at the nodes as soon as their logs name their metrics addresses, and
    // keep one node's exposition for the declared names.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut known: Vec<String> = Vec::new();
    let mut exposition = String::new();
    let status = loop {
        if let Some(status) = devnet.0.try_wait().expect("devnet status") {
            break status;
        }
        assert!(Instant::now() < deadline, "the devnet ran past 180 s");
        let addrs = metrics_addrs(&data);
        if addrs != known {
            write_targets(&targets, &addrs);
            known = addrs;
        }
        if exposition.is_empty()
            && let Some(a) = known.first()
            && let Ok((200, body)) = get(a, "/metrics")
        {
            exposition = body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(status.success(), "devnet failed:\n{log}");
    assert_eq!(known.len(), 4, "metrics addresses found: {known:?}\n{log}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("summary")).expect("JSON");
    let u = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} in {s}"));
    assert_eq!(u("missed"), 0, "{s:#}");
    let boundary =
        |slot: u64| (u("genesis_ms") + slot * u("slot_ms") - BEFORE_BOUNDARY_MS) as f64 / 1000.0;
    let first = u("first_slot");
    let (t_start, t_end) = (boundary(first), boundary(first + SLOTS));

    // Every node scraped at both ends of the counted slots.
    for t in [t_start, t_end] {
        assert_eq!(scalar(&prom, "count(up == 1)", t), 4.0, "at {t}");
    }
    // Every node submits every attestation of its committees: the attestations the nodes
    // submitted in the counted slots are the valid ones times the committee size.
    let submitted = |t| scalar(&prom, "sum(ssv_attestations_submitted_total)", t);
    let attestations = submitted(t_end) - submitted(t_start);
    assert!(u("attestations_valid") > 0, "{s:#}");
    assert_eq!(
        attestations,
        (u("attestations_valid") * u("committee_size")) as f64,
        "{s:#}"
    );
    // Every metric of the dashboard has samples (or, for fault counters, is declared).
    for name in &names {
        if FAULT_ONLY.contains(&name.as_str()) {
            assert!(
                exposition.contains(&format!("# TYPE {name} ")),
                "{name} not declared on /metrics"
            );
            continue;
        }
        let n = scalar(&prom, &format!("count({name})"), t_end);
        assert!(n >= 1.0, "{name}: no series");
        let lo = scalar(&prom, &format!("min({name})"), t_end);
        assert!(lo >= 0.0, "{name}: {lo}");
    }
    // Every panel's query answers with at least one finite value.
    for e in &exprs {
        if metric_names(e)
            .iter()
            .all(|n| FAULT_ONLY.contains(&n.as_str()))
        {
            continue;
        }
        let r = query(&prom, e, t_end);
        assert!(r.iter().any(|(_, v)| v.is_finite()), "{e}: {r:?}");
    }
    // Plausible values.
    let at_end = |e: &str| scalar(&prom, e, t_end);
    assert!(
        at_end("sum(ssv_runner_consensus_duration_seconds_count{ssv_runner_role=\"COMMITTEE\"})")
            >= (4 * SLOTS) as f64
    );
    assert!(at_end("min(ssv_p2p_peers_connected)") >= 1.0);
    assert!(at_end("min(ssv_p2p_peers_per_topic)") >= 1.0);
    assert!(
        at_end("sum(ssv_duty_scheduler_executions_total{ssv_runner_role=\"COMMITTEE\"})")
            >= (4 * SLOTS) as f64
    );
    assert!(at_end("min(rate(process_cpu_seconds_total[10s]))") > 0.0);
    assert!(at_end("sum(rate(ssv_shard_cpu_seconds_total[10s]))") > 0.0);
    let p99 = at_end(
        "histogram_quantile(0.99, sum by (le) (rate(ssv_runner_consensus_duration_seconds_bucket{ssv_runner_role=\"COMMITTEE\"}[1m])))",
    );
    assert!(
        p99 > 0.0 && p99 <= SLOT_MS as f64 / 1000.0,
        "consensus p99 {p99}"
    );
}

#[test]
fn metric_names_come_out_of_promql() {
    let names = metric_names(
        "histogram_quantile(0.9, sum by (le, ssv_runner_role) \
         (rate(ssv_runner_duty_duration_seconds_bucket{instance=~\".*\"}[5m]))) / 1e9",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["ssv_runner_duty_duration_seconds_bucket"]
    );
    let names = metric_names("ssv_p2p_peers_connected + process_resident_memory_bytes");
    assert_eq!(names.len(), 2);
    assert_eq!(
        metric_names("label_values(process_start_time_seconds, instance)")
            .into_iter()
            .collect::<Vec<_>>(),
        vec!["process_start_time_seconds"]
    );
}
