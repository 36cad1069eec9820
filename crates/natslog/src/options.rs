//! How a node reaches its cluster: `--store nats://h1:4222,h2:4222,h3:4222`.

use std::time::Duration;

/// Where the log lives in NATS and how it is kept.
#[derive(Debug, Clone)]
pub struct NatsOptions {
    /// The servers, `nats://host:port` each (any of them is enough to connect).
    pub servers: Vec<String>,
    /// The monitoring endpoints (`http://host:8222`) the sync setting is read from; by
    /// default each server's host on port 8222.
    pub monitors: Vec<String>,
    /// The JetStream stream holding the log.
    pub stream: String,
    /// Subjects are `<prefix>.<category>.<id>`.
    pub subject_prefix: String,
    /// Buckets are named `<stream>_<purpose>` (snapshots, checkpoints, leases).
    pub replicas: usize,
    /// How long an append keeps retrying while the cluster has no leader (an election
    /// takes a few seconds) before it fails with "storage unavailable".
    pub unavailable_after: Duration,
    /// How long a read waits for this node's replica to catch up with what the node
    /// knows the cluster holds.
    pub replica_wait: Duration,
    /// The client's request timeout.
    pub request_timeout: Duration,
    /// A name for this connection (shows in the servers' monitoring).
    pub client_name: String,
}

/// The oldest server accepted: atomic batches with message ids (2.12.1).
pub const MIN_SERVER: (u64, u64, u64) = (2, 12, 1);

impl NatsOptions {
    /// Options for `url`: `nats://h1:4222,h2:4222` (the scheme on the first only, or on
    /// each).
    ///
    /// # Errors
    /// A URL that names no server.
    pub fn from_url(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("nats://").unwrap_or(url);
        let servers: Vec<String> = rest
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.contains("://") {
                    s.to_owned()
                } else {
                    format!("nats://{s}")
                }
            })
            .collect();
        if servers.is_empty() {
            return Err(format!("{url}: no NATS server named"));
        }
        let monitors = servers
            .iter()
            .filter_map(|s| {
                let host = s
                    .split("://")
                    .nth(1)?
                    .rsplit_once(':')
                    .map_or(s.split("://").nth(1)?, |(h, _)| h);
                Some(format!("http://{host}:8222"))
            })
            .collect();
        Ok(Self {
            servers,
            monitors,
            stream: "SWITCHBOARD".into(),
            subject_prefix: "sb.ev".into(),
            replicas: 3,
            unavailable_after: Duration::from_secs(15),
            replica_wait: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
            client_name: "switchboard".into(),
        })
    }

    /// The name of one of the log's key-value buckets.
    pub fn bucket(&self, purpose: &str) -> String {
        format!("{}_{purpose}", self.stream)
    }
}

/// Parses `2.15.1` (or `v2.15.1-beta`) into numbers.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let v = v.trim().trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_versions() {
        let o = NatsOptions::from_url("nats://h1:4222,h2:4223, h3").unwrap();
        assert_eq!(o.servers, ["nats://h1:4222", "nats://h2:4223", "nats://h3"]);
        assert_eq!(
            o.monitors,
            ["http://h1:8222", "http://h2:8222", "http://h3:8222"]
        );
        assert!(NatsOptions::from_url("nats://").is_err());
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("v2.12.0-beta.3"), Some((2, 12, 0)));
        assert!(parse_version("2.9.10").unwrap() < MIN_SERVER);
        assert!(parse_version("2.12.1").unwrap() >= MIN_SERVER);
    }
}
