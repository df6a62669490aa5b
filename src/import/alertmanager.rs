//! alertmanager.yml into forewarn's file: `route`, `receivers`,
//! `inhibit_rules` and `time_intervals` carry as they are; `global`'s SMTP
//! defaults and `resolve_timeout` join Prometheus's `global`;
//! `mute_time_intervals` (Alertmanager's older name) becomes
//! `time_intervals`. Integrations forewarn lacks (Slack, PagerDuty, ...) and
//! `templates` are explained here.

use super::report::HTTP_CLIENT;
use super::tree::{Entry, Kind, Node};
use super::{ImportError, Out, PathFix};

/// Keys with no equivalent, and what to do instead.
const TABLE: &[(&str, &str)] = &[
    ("templates", "forewarn does not read Go template files: copy the templates your receivers use into email_configs `text`, `html` or `headers.Subject`, which take the same syntax (README \"Email templates\")"),
    ("global.http_config", "forewarn has no global HTTP client settings: set `http_config` on each webhook_configs entry"),
    ("global.smtp_auth_password_file", "forewarn takes the SMTP password file per receiver: set `auth_password_file` in each email_configs entry"),
    ("global.smtp_auth_identity", "forewarn takes the SMTP identity per receiver: set `auth_identity` in each email_configs entry"),
    ("global.smtp_auth_secret", "forewarn does not do SMTP CRAM-MD5; use auth_username/auth_password"),
    ("global.smtp_force_implicit_tls", "forewarn takes it per receiver: set `force_implicit_tls` in each email_configs entry"),
    ("global.smtp_tls_config", "forewarn takes it per receiver: set `tls_config` in each email_configs entry"),
    ("global.*_url", INTEGRATION_SETTING),
    ("global.*_api_key", INTEGRATION_SETTING),
    ("global.*_api_key_file", INTEGRATION_SETTING),
    ("global.*_secret", INTEGRATION_SETTING),
    ("global.*_api_url_file", INTEGRATION_SETTING),
    ("global.*_app_token", INTEGRATION_SETTING),
    ("global.*_app_token_file", INTEGRATION_SETTING),
    ("global.wechat_*", INTEGRATION_SETTING),
    ("global.victorops_*", INTEGRATION_SETTING),
    ("global.opsgenie_*", INTEGRATION_SETTING),
    ("global.telegram_*", INTEGRATION_SETTING),
    ("global.webex_*", INTEGRATION_SETTING),
    ("global.jira_*", INTEGRATION_SETTING),
    ("global.rocketchat_*", INTEGRATION_SETTING),
    ("receivers[].email_configs", ""),
    ("receivers[].webhook_configs", ""),
    ("receivers[].*_configs", ""),
    ("tracing", "forewarn exports no traces"),
];

const INTEGRATION_SETTING: &str =
    "a setting of an integration forewarn does not have (it sends email, webhooks and to Alertmanagers)";

const PATH_KEYS: &[&str] =
    &["ca_file", "cert_file", "key_file", "password_file", "credentials_file", "auth_password_file", "url_file"];

/// Moves alertmanager.yml's sections into the output.
pub(crate) fn carry(root: Node, out: &mut Out, fix: &PathFix) -> Result<(), ImportError> {
    for mut e in super::top_level(
        root,
        out,
        TABLE,
        &["global", "route"],
        &["receivers", "inhibit_rules", "time_intervals", "mute_time_intervals"],
    )? {
        out.drop_known(&mut e.value, &[TABLE, HTTP_CLIENT]);
        drop_integrations(out, &mut e);
        fix.apply(&mut e.value, PATH_KEYS);
        match e.key.as_str() {
            "global" => merge_global(out, e),
            "mute_time_intervals" | "time_intervals" => merge_intervals(out, e),
            _ => out.entries().push(e),
        }
    }
    Ok(())
}

/// `receivers[].slack_configs` and the like: the kinds forewarn has are
/// those registered in `notify::config` (email, webhook, alertmanager).
fn drop_integrations(out: &mut Out, e: &mut Entry) {
    if e.key != "receivers" {
        return;
    }
    let Kind::Seq(receivers) = &mut e.value.kind else { return };
    let ours = crate::notify::config::ReceiverConfig::integration_fields();
    for r in receivers {
        let Some(m) = r.as_map_mut() else { continue };
        let mut kept = Vec::new();
        let mut lead = None;
        for mut x in std::mem::take(m) {
            let name = x.key.strip_suffix("_configs");
            match name {
                Some(n) if !ours.contains(&x.key.as_str()) => {
                    lead = lead.or(Some(x.value.lead_from));
                    let why = format!(
                        "forewarn has no {n} integration: reach it through a webhook_configs bridge, or forward the \
                         alerts to an Alertmanager that has it with `alertmanager_configs`"
                    );
                    out.drop_entry(&x, why);
                }
                _ => {
                    if let Some(l) = lead.take() {
                        x.value.lead_from = l;
                    }
                    kept.push(x)
                }
            }
        }
        *m = kept;
    }
}

/// Alertmanager's `global` joins the one `global` (the keys do not overlap).
fn merge_global(out: &mut Out, e: Entry) {
    let Kind::Map(mut add) = e.value.kind else { return };
    let Some(first) = add.first_mut() else { return };
    // The comments above Alertmanager's `global:` (often the file's header) go with its first key.
    first.value.lead_from = first.value.lead_from.min(e.value.lead_from);
    match out.section("global") {
        Some(g) => {
            if g.value.is_null() {
                g.value = Node { kind: Kind::Map(Vec::new()), ..g.value.clone() };
            }
            if let Some(m) = g.value.as_map_mut() {
                m.extend(add);
            }
        }
        None => {
            let value = Node { kind: Kind::Map(add), ..e.value };
            out.entries().insert(0, Entry { value, ..e });
        }
    }
}

/// `mute_time_intervals` and `time_intervals` have one shape: one list.
fn merge_intervals(out: &mut Out, mut e: Entry) {
    let Kind::Seq(add) = e.value.kind else {
        // null: nothing to carry
        return;
    };
    match out.section("time_intervals") {
        Some(t) => {
            if let Kind::Seq(items) = &mut t.value.kind {
                items.extend(add);
            }
        }
        None => {
            e.key = "time_intervals".into();
            e.value.kind = Kind::Seq(add);
            out.entries().push(e);
        }
    }
}
