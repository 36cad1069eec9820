//! What a node checks of its cluster before it writes: that every write is fsynced.
//!
//! Neither INFO nor the JetStream API says so; the monitoring endpoint's `/varz` does
//! (`jetstream.config.sync_always`). Every endpoint that answers must say yes, and at least
//! one must answer.

use serde::Deserialize;

use crate::store::ConnectError;

#[derive(Deserialize)]
struct Varz {
    #[serde(default)]
    jetstream: Option<JetStreamVarz>,
}

#[derive(Deserialize)]
struct JetStreamVarz {
    #[serde(default)]
    config: Option<JetStreamConfig>,
}

#[derive(Deserialize)]
struct JetStreamConfig {
    #[serde(default)]
    sync_always: bool,
}

/// # Errors
/// [`ConnectError::NotSynced`] when a server does not sync every write,
/// [`ConnectError::SyncUnknown`] when no monitoring endpoint answers.
pub(crate) async fn require_sync_always(monitors: &[String]) -> Result<(), ConnectError> {
    // reqwest speaks TLS through rustls without a provider of its own: the process
    // default (ring, as everywhere in Switchboard) must be installed; a second
    // installation is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(|e| ConnectError::Runtime(e.to_string()))?;
    let mut answered = false;
    for monitor in monitors {
        let url = format!("{}/varz", monitor.trim_end_matches('/'));
        let Ok(response) = client.get(&url).send().await else {
            continue;
        };
        let Ok(varz) = response.json::<Varz>().await else {
            continue;
        };
        answered = true;
        let synced = varz
            .jetstream
            .and_then(|j| j.config)
            .is_some_and(|c| c.sync_always);
        if !synced {
            return Err(ConnectError::NotSynced {
                monitor: monitor.clone(),
            });
        }
    }
    if answered {
        Ok(())
    } else {
        Err(ConnectError::SyncUnknown {
            monitors: monitors.join(", "),
        })
    }
}
