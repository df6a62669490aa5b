//! Who hears that fresh samples arrived, so a rule evaluates right after
//! the scrape that brings its data instead of up to an interval later.
//!
//! A rule group registers the metric names it reads as a 64-bit mask (one
//! bit per name hash, [`name_bit`]). Each committed batch carries the mask
//! of the names it touched (the store keeps each series' bit, so a batch
//! costs one OR per sample), and the bus wakes only the groups whose masks
//! it meets: a group over `node_*` is not woken by every target's scrape.
//! A hash collision only wakes a group early; it never hides data, since
//! a group that hears nothing still evaluates on its own schedule.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The bit of metric name `name` in an ingest mask.
pub fn name_bit(name: &str) -> u8 {
    // FNV-1a: stable, quick on short names, no allocation.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 64) as u8
}

/// The mask of a set of names; a `None` (a selector without a literal
/// metric name, such as `{job="x"}`) may read any series, so all bits.
pub fn names_mask<'a>(names: impl IntoIterator<Item = Option<&'a str>>) -> u64 {
    names.into_iter().fold(0, |m, n| m | n.map_or(u64::MAX, |n| 1u64 << name_bit(n)))
}

/// One listener's view: how many batches of its names arrived since it last
/// looked, and when the latest did.
pub struct IngestWatch {
    mask: u64,
    arrivals: AtomicU64,
    /// Nanoseconds after the bus's epoch of the latest matching batch.
    last_ns: AtomicU64,
    epoch: Instant,
    notify: Notify,
}

impl IngestWatch {
    /// Batches of this watch's names committed since the last call.
    pub fn take(&self) -> u64 {
        self.arrivals.swap(0, Ordering::AcqRel)
    }

    /// Whether a batch of this watch's names is waiting to be taken.
    pub fn pending(&self) -> bool {
        self.arrivals.load(Ordering::Acquire) > 0
    }

    /// When the latest batch of this watch's names was committed (the
    /// epoch if none yet).
    pub fn last_arrival(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last_ns.load(Ordering::Acquire))
    }

    /// Waits until a batch of this watch's names is pending, at most
    /// `max`; whether one is.
    pub async fn wait(&self, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            if self.pending() {
                return true;
            }
            // A permit left by a batch already taken wakes this once for
            // nothing; the loop looks again.
            if tokio::time::timeout_at(deadline, self.notify.notified()).await.is_err() {
                return self.pending();
            }
        }
    }
}

/// The listeners of one store.
pub(crate) struct IngestBus {
    watches: Mutex<Vec<Weak<IngestWatch>>>,
    epoch: Instant,
}

impl Default for IngestBus {
    fn default() -> Self {
        IngestBus { watches: Mutex::new(Vec::new()), epoch: Instant::now() }
    }
}

impl IngestBus {
    /// A new listener for batches touching `mask`; it stops listening when
    /// dropped.
    pub fn watch(&self, mask: u64) -> Arc<IngestWatch> {
        let w = Arc::new(IngestWatch {
            mask,
            arrivals: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            epoch: self.epoch,
            notify: Notify::new(),
        });
        let mut ws = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        ws.retain(|w| w.strong_count() > 0);
        ws.push(Arc::downgrade(&w));
        w
    }

    /// Tells the listeners whose masks meet `mask` that a batch was
    /// committed; `except` (the writer's own watch) is not told.
    pub fn publish(&self, mask: u64, except: Option<&IngestWatch>) {
        if mask == 0 {
            return;
        }
        let now = self.epoch.elapsed().as_nanos() as u64;
        let ws = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        for w in ws.iter().filter_map(Weak::upgrade) {
            if w.mask & mask != 0 && !except.is_some_and(|x| std::ptr::eq(x, &*w)) {
                w.last_ns.store(now, Ordering::Release);
                w.arrivals.fetch_add(1, Ordering::AcqRel);
                w.notify.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_meet_only_on_shared_names() {
        let a = names_mask([Some("node_memory_bytes")]);
        assert_eq!(a.count_ones(), 1);
        assert_eq!(names_mask([None]), u64::MAX);
        assert_eq!(names_mask(std::iter::empty()), 0);
        // Distinct bits for two names that do not collide.
        let (x, y) = ("http_requests_total", "queue_depth");
        if name_bit(x) != name_bit(y) {
            assert_eq!(names_mask([Some(x)]) & names_mask([Some(y)]), 0);
        }
    }

    #[tokio::test]
    async fn a_watch_hears_its_names_and_not_others() {
        let bus = IngestBus::default();
        let (x, y) = ("http_requests_total", "queue_depth");
        assert_ne!(name_bit(x), name_bit(y), "pick two names on different bits");
        let w = bus.watch(names_mask([Some(x)]));
        bus.publish(names_mask([Some(y)]), None);
        assert!(!w.wait(Duration::from_millis(20)).await, "another name's batch must not wake it");
        let before = Instant::now();
        bus.publish(names_mask([Some(x), Some(y)]), None);
        bus.publish(u64::MAX, Some(&w));
        assert!(w.wait(Duration::from_secs(5)).await);
        assert!(w.last_arrival() >= before);
        assert_eq!(w.take(), 1);
        // The stored permit of a taken batch does not count as a new one.
        assert!(!w.wait(Duration::from_millis(20)).await);
        // A waiter is woken by a batch published while it waits.
        let bus = Arc::new(bus);
        let b2 = bus.clone();
        let t = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            b2.publish(u64::MAX, None);
        });
        assert!(w.wait(Duration::from_secs(5)).await);
        t.await.unwrap();
        drop(w);
        bus.publish(u64::MAX, None);
        assert!(bus.watches.lock().unwrap().iter().all(|w| w.strong_count() == 0));
    }
}
