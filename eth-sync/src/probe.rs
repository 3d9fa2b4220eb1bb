//! A one-shot health probe of an execution node, for the node's health endpoints: is it
//! reachable, is it syncing, and which block is its head. Contract sync's own failover
//! ([`crate::sync`]) is not involved: a probe must not disturb the sync's provider choice.

use std::time::Duration;

use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::SyncStatus;

/// What one probe of an execution node found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionStatus {
    /// Its head block number (`eth_blockNumber`).
    pub head: u64,
    /// Whether it reports that it is syncing (`eth_syncing`).
    pub syncing: bool,
}

/// Why a probe found no status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The endpoint could not be connected to (bad URL, connection refused, WebSocket
    /// handshake failed).
    #[error("connecting to {endpoint}: {why}")]
    Connect {
        /// The endpoint, redacted to scheme and host.
        endpoint: String,
        /// What failed.
        why: String,
    },
    /// A request failed or its answer did not decode.
    #[error("{method} on {endpoint}: {why}")]
    Request {
        /// The JSON-RPC method.
        method: &'static str,
        /// The endpoint, redacted to scheme and host.
        endpoint: String,
        /// What failed.
        why: String,
    },
    /// The probe took longer than its timeout.
    #[error("{endpoint} did not answer within {timeout:?}")]
    Timeout {
        /// The endpoint, redacted to scheme and host.
        endpoint: String,
        /// The timeout.
        timeout: Duration,
    },
}

/// Probes `url` (HTTP or WebSocket) once: `eth_syncing`, then `eth_blockNumber`, all within
/// `timeout`.
pub async fn probe_execution_node(
    url: &str,
    timeout: Duration,
) -> Result<ExecutionStatus, ProbeError> {
    let endpoint = crate::sync::redact(url);
    let work = async {
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect(url)
            .await
            .map_err(|e| ProbeError::Connect {
                endpoint: endpoint.clone(),
                why: e.to_string(),
            })?;
        let syncing = provider.syncing().await.map_err(|e| ProbeError::Request {
            method: "eth_syncing",
            endpoint: endpoint.clone(),
            why: e.to_string(),
        })?;
        let head = provider
            .get_block_number()
            .await
            .map_err(|e| ProbeError::Request {
                method: "eth_blockNumber",
                endpoint: endpoint.clone(),
                why: e.to_string(),
            })?;
        Ok(ExecutionStatus {
            head,
            syncing: !matches!(syncing, SyncStatus::None),
        })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout { endpoint, timeout }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreachable_endpoint_is_an_error_not_a_hang() {
        // Port 9 (discard) on loopback: nothing listens there in a test environment, so the
        // connection is refused at once; the timeout bounds it otherwise.
        let r = probe_execution_node("http://127.0.0.1:9", Duration::from_secs(3)).await;
        assert!(r.is_err(), "{r:?}");
        let r = probe_execution_node("not a url", Duration::from_secs(3)).await;
        assert!(matches!(r, Err(ProbeError::Connect { .. })), "{r:?}");
    }
}
