//! `scrape_cluster`: splitting one set of targets over N forewarn
//! scrapers, with vmagent's `-promscrape.cluster.*` semantics. Every member
//! reads the same config; a target belongs to member `h % members_count`
//! and the `replication_factor - 1` members after it (wrapping), where `h`
//! hashes the target's labels after relabeling and its URL. Members agree
//! without talking to each other; a member that is down leaves its targets
//! unscraped (unless `replication_factor` > 1), and the receiver behind
//! `remote_write` sees each of them `replication_factor` times.
//!
//! The hash is forewarn's own (FNV-1a plus a mixing step), not vmagent's
//! xxhash: a cluster mixing vmagent and forewarn members would not agree.

use serde::Deserialize;

use super::target::Target;

/// The `scrape_cluster` section.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeClusterConfig {
    pub members_count: usize,
    /// This member's number, 0-based: `2`, or a name ending in it such as
    /// `forewarn-2` (a StatefulSet pod name), as vmagent accepts.
    pub member_num: MemberNum,
    #[serde(default = "one")]
    pub replication_factor: usize,
}

fn one() -> usize {
    1
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum MemberNum {
    Number(usize),
    Name(String),
}

impl MemberNum {
    fn number(&self) -> Option<usize> {
        match self {
            MemberNum::Number(n) => Some(*n),
            MemberNum::Name(s) => s.rsplit('-').next()?.parse().ok(),
        }
    }
}

/// Why `scrape_cluster` was refused (the caller adds `scrape_cluster:`).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("members_count must be at least 1")]
    NoMembers,
    /// The `Debug` form of what was written (a number or a name).
    #[error("member_num {0}: use a number, or a name ending in -<number>")]
    MemberName(String),
    #[error("member_num {member} must be below members_count {count}")]
    MemberRange { member: usize, count: usize },
    #[error("replication_factor {factor} must be between 1 and members_count {count}")]
    Replication { factor: usize, count: usize },
}

impl ScrapeClusterConfig {
    pub fn validate(&self) -> Result<(), ClusterError> {
        if self.members_count == 0 {
            return Err(ClusterError::NoMembers);
        }
        let n = self.member_num.number().ok_or_else(|| ClusterError::MemberName(format!("{:?}", self.member_num)))?;
        if n >= self.members_count {
            return Err(ClusterError::MemberRange { member: n, count: self.members_count });
        }
        if self.replication_factor == 0 || self.replication_factor > self.members_count {
            return Err(ClusterError::Replication { factor: self.replication_factor, count: self.members_count });
        }
        Ok(())
    }

    /// The members that scrape `target`.
    pub fn members_of(&self, target: &Target) -> Vec<usize> {
        let mut key = target.labels.clone();
        key.set("__url__".into(), target.url.clone());
        let mut h = key.fingerprint();
        // splitmix64's finaliser: FNV's low bits alone spread poorly.
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        let first = (h % self.members_count as u64) as usize;
        (0..self.replication_factor).map(|i| (first + i) % self.members_count).collect()
    }

    /// Whether this member scrapes `target`.
    pub fn owns(&self, target: &Target) -> bool {
        let me = self.member_num.number().unwrap_or(0);
        self.members_of(target).contains(&me)
    }
}
