//! prometheus.yml into forewarn's file: `global`, `rule_files`,
//! `scrape_configs`, `alerting` and `remote_write` carry as they are (the
//! deprecated `bearer_token` keys become `authorization`); what Prometheus
//! has and forewarn does not (service discovery other than static and file,
//! remote read, TSDB settings, global scrape limits) is explained here.

use super::report::{DISCOVERY, HTTP_CLIENT};
use super::tree::{Entry, Kind, Node};
use super::{ImportError, Out, PathFix};

/// Keys with no equivalent, and what to do instead.
const TABLE: &[(&str, &str)] = &[
    ("global.body_size_limit", "forewarn sets scrape limits per job: copy it into each scrape_configs entry"),
    ("global.sample_limit", "forewarn sets scrape limits per job: copy it into each scrape_configs entry"),
    ("global.label_limit", "forewarn sets scrape limits per job: copy it into each scrape_configs entry"),
    ("global.label_name_length_limit", "forewarn sets scrape limits per job: copy it into each scrape_configs entry"),
    ("global.label_value_length_limit", "forewarn sets scrape limits per job: copy it into each scrape_configs entry"),
    ("global.target_limit", "forewarn has no limit on the number of targets"),
    ("scrape_configs[].target_limit", "forewarn has no limit on the number of targets"),
    ("global.query_log_file", "forewarn keeps no query log"),
    ("**.scrape_failure_log_file", "forewarn has no scrape failure log: failed scrapes set `up` to 0 and are logged with the target's URL"),
    ("runtime", "forewarn has no Go runtime settings"),
    ("scrape_config_files", "forewarn reads scrape jobs only from its own file: paste the jobs of these files under scrape_configs"),
    ("remote_read", "forewarn has no remote_read; to evaluate rules against a remote query API use `datasource:` (README)"),
    ("otlp", "forewarn does not receive OTLP"),
    ("tracing", "forewarn exports no traces"),
    ("storage.tsdb", "forewarn has no TSDB settings; keep samples with `storage.retention` (Prometheus's --storage.tsdb.retention.time flag)"),
    ("storage.exemplars", "forewarn keeps no exemplars"),
    ("scrape_configs[].static_configs", ""),
    ("scrape_configs[].file_sd_configs", ""),
    ("scrape_configs[].*_sd_configs", DISCOVERY),
    ("alerting.alertmanagers[].static_configs", ""),
    ("alerting.alertmanagers[].*_sd_configs", "forewarn finds Alertmanagers only in static_configs: list their addresses there"),
    ("alerting.alertmanagers[].relabel_configs", "forewarn does not relabel Alertmanager targets: list the final addresses in static_configs"),
    ("alerting.alertmanagers[].alert_relabel_configs", "forewarn applies alert_relabel_configs to all Alertmanagers: move the rules to `alerting.alert_relabel_configs`"),
    ("scrape_configs[].fallback_scrape_protocol", "forewarn reads the Prometheus text and OpenMetrics formats by their Content-Type"),
    ("scrape_configs[].scrape_protocols", "forewarn reads the Prometheus text and OpenMetrics formats by their Content-Type"),
    ("global.scrape_protocols", "forewarn reads the Prometheus text and OpenMetrics formats by their Content-Type"),
    ("remote_write[].metadata_config", "forewarn sends samples only, not metric metadata"),
    ("remote_write[].send_exemplars", "forewarn keeps no exemplars"),
    ("remote_write[].protobuf_message", "forewarn sends remote write 1.0 (prometheus.WriteRequest)"),
];

/// Where relative file paths are, so that they keep pointing at the same files.
const PATH_KEYS: &[&str] = &[
    "rule_files",
    "files",
    "ca_file",
    "cert_file",
    "key_file",
    "password_file",
    "credentials_file",
    "bearer_token_file",
];

/// Moves prometheus.yml's sections into the output.
pub(crate) fn carry(mut root: Node, out: &mut Out, fix: &PathFix) -> Result<(), ImportError> {
    // Over the whole file at once: `rule_files` is a top-level key.
    fix.apply(&mut root, PATH_KEYS);
    for mut e in super::top_level(
        root,
        out,
        TABLE,
        &["global", "alerting", "storage"],
        &["scrape_configs", "remote_write", "rule_files"],
    )? {
        out.drop_known(&mut e.value, &[TABLE, HTTP_CLIENT]);
        bearer_to_authorization(&mut e.value);
        if e.key == "rule_files" && e.value.is_null() {
            // `rule_files:` with every line commented out: an empty list.
            e.value.kind = Kind::Seq(Vec::new());
        }
        out.entries().push(e);
    }
    Ok(())
}

/// Prometheus's deprecated `bearer_token(_file)` is `authorization.credentials(_file)`.
fn bearer_to_authorization(node: &mut Node) {
    match &mut node.kind {
        Kind::Map(entries) => {
            let has_auth = entries.iter().any(|e| e.key == "authorization");
            for e in entries.iter_mut() {
                let inner = match e.key.as_str() {
                    "bearer_token" => "credentials",
                    "bearer_token_file" => "credentials_file",
                    _ => {
                        bearer_to_authorization(&mut e.value);
                        continue;
                    }
                };
                if has_auth {
                    continue; // both set: invalid in Prometheus; the loader reports it
                }
                let value = std::mem::replace(&mut e.value, Node::scalar(""));
                let moved = Entry { key: inner.to_string(), key_pos: e.key_pos, value: value.clone(), note: None };
                e.key = "authorization".into();
                e.value = Node { kind: Kind::Map(vec![moved]), flow: false, ..value };
            }
        }
        Kind::Seq(items) => items.iter_mut().for_each(bearer_to_authorization),
        Kind::Scalar { .. } => {}
    }
}

/// After all sources: remote_write needs a state dir for its WAL.
pub(crate) fn finish(out: &mut Out) {
    let sends = out.section("remote_write").is_some_and(|e| matches!(&e.value.kind, Kind::Seq(s) if !s.is_empty()));
    if !sends {
        return;
    }
    let path = Entry {
        key: "path".into(),
        key_pos: Default::default(),
        value: Node::scalar("/var/lib/forewarn"),
        note: Some("added by forewarn import: remote_write sends from the write-ahead log kept here".into()),
    };
    match out.section("storage") {
        Some(storage) => {
            if storage.value.is_null() {
                storage.value = Node::map(Vec::new());
            }
            if let Some(m) = storage.value.as_map_mut() {
                if !m.iter().any(|e| e.key == "path") {
                    m.insert(0, path);
                }
            }
        }
        None => out.entries().push(Entry {
            key: "storage".into(),
            key_pos: Default::default(),
            value: Node::map(vec![path]),
            note: None,
        }),
    }
}
