//! How long the brokers let a replica fall behind, or a broker go silent,
//! before the in-sync set moves on without it: the bound on how late a
//! record already sent can still become visible, which `--exactly-once`
//! waits out after an unclean stop.

use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::config::ClientConfig;

use super::read_back::Quiet;

/// The broker settings that bound it.
const BOUNDS: [&str; 2] = ["replica.lag.time.max.ms", "broker.session.timeout.ms"];

/// The largest of [`BOUNDS`] over the brokers the cluster names (each
/// broker's own settings; needs DescribeConfigs on the cluster).
pub async fn lag_bound(properties: &[(String, String)]) -> Result<Duration> {
    let mut config = ClientConfig::new();
    for (key, value) in properties {
        config.set(key, value);
    }
    let admin: AdminClient<Quiet> = config.create_with_context(Quiet)?;
    let brokers: Vec<i32> = admin
        .inner()
        .fetch_metadata(None, Duration::from_secs(10))
        .context("the cluster's brokers")?
        .brokers()
        .iter()
        .map(|b| b.id())
        .collect();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let mut longest = None;
    // A broker's own settings are asked of that broker: one at a time.
    for id in brokers {
        let resource = [ResourceSpecifier::Broker(id)];
        for described in admin.describe_configs(&resource, &options).await? {
            let described =
                described.map_err(|e| anyhow!("DescribeConfigs on broker {id}: {e}"))?;
            for name in BOUNDS {
                let ms = described
                    .get(name)
                    .and_then(|entry| entry.value.as_deref()?.parse::<u64>().ok());
                longest = longest.max(ms);
            }
        }
    }
    let ms = longest.ok_or_else(|| anyhow!("no broker gave {}", BOUNDS.join(" or ")))?;
    Ok(Duration::from_millis(ms))
}
