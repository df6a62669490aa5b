//! What a receiver is to the rest of the pipeline: the [`Integration`] trait,
//! and the collection of configured integrations the dispatcher and the
//! outbox worker share.
//!
//! Each receiver folder (`webhook/`, `email/`, `alertmanager/`, `console/`)
//! implements [`Integration`] on its config type, so everything that differs
//! between receivers (its name, whether it wants resolutions, how often it
//! must hear again, whether it wants a chart, what a valid config is, how a
//! message goes on the wire) is answered there, and the dispatcher and the
//! outbox only ever hold an `Arc<dyn Integration>`. Registering a receiver
//! is one line in `receiver_kinds!` in `notify/config.rs`, which makes
//! [`ReceiverConfig::integrations`](super::config::ReceiverConfig::integrations)
//! list it.
//!
//! An integration is known by its key, `receiver/kind/index`
//! ([`integration_key`]): the outbox stores notifications and the
//! notification log under it, so it must survive a restart and a reload
//! that keeps the receiver's shape.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::{DeliveryError, Notification};

/// A config mistake [`Integration::check`] found: each receiver reports its
/// own typed error (`WebhookConfigError`, `EmailConfigError`, ...), which
/// the config loader prefixes with where the entry is.
pub type CheckError = Box<dyn std::error::Error + Send + Sync>;

/// What [`Integration::send`] returns: the delivery runs on the outbox
/// worker's tasks, so it must be `Send`.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// One way to reach a receiver (an entry of its `webhook_configs`,
/// `email_configs`, ...). Implemented by each receiver folder on its config.
pub trait Integration: Send + Sync + std::fmt::Debug {
    /// The kind, as in keys, metrics and logs (`webhook`, `email`, ...).
    fn kind(&self) -> &'static str;

    /// Whether it is told when alerts resolve (Alertmanager's `send_resolved`).
    fn send_resolved(&self) -> bool;

    /// How long after a notification the same firing alerts are sent again,
    /// given the route's `repeat_interval` and `group_interval`. Most
    /// receivers take the route's `repeat_interval`.
    fn repeat_interval(&self, route_repeat: Duration, _group_interval: Duration) -> Duration {
        route_repeat
    }

    /// Whether each alert's deploy notes should carry the chart as PNG
    /// (costly to draw, so only receivers that attach it ask).
    fn wants_chart(&self) -> bool {
        false
    }

    /// What serde cannot check, at config load, so a mistake is reported
    /// with the file instead of at the first send.
    fn check(&self) -> Result<(), CheckError> {
        Ok(())
    }

    /// One attempt to deliver `n`; the outbox decides about retries. `ctx`
    /// holds the clients shared by all sends of one kind.
    fn send<'a>(&'a self, ctx: &'a SendContext, n: &'a Notification) -> SendFuture<'a>;
}

/// Clients shared by every delivery (connection pools), one value per type,
/// created on first use. The dispatcher keeps one across config reloads,
/// so a reload does not drop pooled connections; clones share the values.
#[derive(Clone, Default)]
pub struct SendContext {
    shared: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
}

impl std::fmt::Debug for SendContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.shared.lock().unwrap_or_else(|p| p.into_inner()).len();
        f.debug_struct("SendContext").field("clients", &n).finish()
    }
}

impl SendContext {
    /// The one `T` of this context, made with `T::default()` on first use.
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut map = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let slot = map.entry(TypeId::of::<T>()).or_insert_with(|| Arc::new(T::default()));
        match slot.clone().downcast::<T>() {
            Ok(t) => t,
            // Cannot happen (the slot is keyed by T's TypeId); a fresh value
            // beats a panic in a delivery task if it ever did.
            Err(_) => {
                let t = Arc::new(T::default());
                *slot = t.clone();
                t
            }
        }
    }
}

/// The receivers by name, each with its integrations in config order.
pub type ReceiverMap = HashMap<String, Vec<Arc<dyn Integration>>>;

/// The receivers, shared by the dispatcher (which swaps them on reload)
/// and the delivery worker (which looks integrations up by key).
pub type Receivers = Arc<RwLock<ReceiverMap>>;

/// The stable name of the `i`th integration of a receiver, e.g.
/// `team/webhook/0`: the key of its log entries and queued notifications,
/// unchanged by a reload that keeps the receiver's shape.
pub fn integration_key(receiver: &str, list: &[Arc<dyn Integration>], i: usize) -> String {
    let kind = list[i].kind();
    let n = list[..i].iter().filter(|x| x.kind() == kind).count();
    format!("{receiver}/{kind}/{n}")
}

/// The integration a key names, if it is still configured.
pub fn find_integration(receivers: &ReceiverMap, key: &str) -> Option<Arc<dyn Integration>> {
    let receiver = key.rsplitn(3, '/').nth(2)?;
    let list = receivers.get(receiver)?;
    (0..list.len()).find(|&i| integration_key(receiver, list, i) == key).map(|i| list[i].clone())
}

/// The send stage: one attempt to send one notification through one
/// integration; the outbox decides about retries. Each attempt is counted,
/// as Alertmanager's `notifications_total` and `notifications_failed_total`
/// (what the `ForewarnNotificationsFailing` ratio is taken of).
pub async fn deliver_once(ctx: &SendContext, integ: &dyn Integration, n: &Notification) -> Result<(), DeliveryError> {
    let result = integ.send(ctx, n).await;
    let (receiver, kind) = (n.receiver.clone(), integ.kind());
    metrics::counter!("forewarn_notification_attempts_total", "receiver" => receiver.clone(), "integration" => kind)
        .increment(1);
    if result.is_err() {
        metrics::counter!("forewarn_notification_attempts_failed_total", "receiver" => receiver, "integration" => kind)
            .increment(1);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Labels;
    use crate::notify::console::ConsoleReceiver;
    use crate::notify::webhook::WebhookConfig;

    #[test]
    fn integration_keys_are_stable_and_found() {
        let list: Vec<Arc<dyn Integration>> =
            vec![Arc::new(ConsoleReceiver), Arc::new(WebhookConfig::new("http://a/")), Arc::new(ConsoleReceiver)];
        assert_eq!(integration_key("team/ops", &list, 2), "team/ops/console/1");
        let mut m = HashMap::new();
        m.insert("team/ops".to_string(), list);
        assert_eq!(find_integration(&m, "team/ops/webhook/0").map(|i| i.kind()), Some("webhook"));
        assert!(find_integration(&m, "team/ops/webhook/1").is_none());
        assert!(find_integration(&m, "nobody/console/0").is_none());
    }

    #[derive(Default)]
    struct Pool(Mutex<u32>);

    #[test]
    fn send_context_shares_one_value_per_type_across_clones() {
        let ctx = SendContext::default();
        *ctx.shared::<Pool>().0.lock().unwrap() += 1;
        let clone = ctx.clone();
        *clone.shared::<Pool>().0.lock().unwrap() += 1;
        assert_eq!(*ctx.shared::<Pool>().0.lock().unwrap(), 2, "one Pool, made once");
        assert!(Arc::ptr_eq(&ctx.shared::<Pool>(), &clone.shared::<Pool>()));
        // Another type gets its own value.
        assert_eq!(*ctx.shared::<Mutex<u64>>().lock().unwrap(), 0);
        assert!(format!("{ctx:?}").contains("clients: 2"), "{ctx:?}");
    }

    /// An integration that fails every send, to see what is counted.
    #[derive(Debug)]
    struct Failing;

    impl Integration for Failing {
        fn kind(&self) -> &'static str {
            "failing"
        }
        fn send_resolved(&self) -> bool {
            true
        }
        fn send<'a>(&'a self, _: &'a SendContext, n: &'a Notification) -> SendFuture<'a> {
            let e = DeliveryError::Permanent { receiver: n.receiver.clone(), message: "no".into() };
            Box::pin(async move { Err(e) })
        }
    }

    #[test]
    fn default_rules_and_deliver_once_passes_the_result_on() {
        let i = Failing;
        let (repeat, group) = (Duration::from_secs(3600), Duration::from_secs(60));
        assert_eq!(i.repeat_interval(repeat, group), repeat);
        assert!(!i.wants_chart() && i.check().is_ok());
        let n = Notification::new("r", "g".into(), Labels::new(), Vec::new(), "");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let e = rt.block_on(deliver_once(&SendContext::default(), &i, &n)).unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("r: no"), "{e}");
    }
}
