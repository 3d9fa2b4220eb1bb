//! A Beacon API client for the endpoints committee duties need, over several beacon nodes.
//!
//! Health: [`BeaconClient::probe_health`] asks every node's `GET /eth/v1/node/syncing` and
//! judges it ([`NodeHealth::judge`]: within [`SYNC_DISTANCE_TOLERANCE`] slots of the head,
//! not optimistic, execution client online); the node runtime calls it at start and then
//! once a slot. Each request tries the nodes in [`attempt_order`]: healthy ones first (the
//! one that answered last before the others), then those not probed yet, then those that
//! answer but lag, then those that do not answer — so a lagging but responsive node serves
//! nothing while a healthy one does, and when none is healthy every node is still tried. A
//! request fails over to the next node on a transport error, a timeout or a 5xx answer; a 4xx
//! answer is the request's fault and is not retried.
//!
//! Head events come from every node at once ([`BeaconClient::head_events`]): one
//! subscription per node, resubscribed with backoff when it ends, merged, with the copies of
//! a head that every node sends dropped ([`HeadDedup`]).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::health::{
    HeadDedup, NodeHealth, SYNC_DISTANCE_TOLERANCE, attempt_order, preferred_after_probe,
};
use crate::types::{
    AttestationData, AttestationElectra, AttesterDuties, AttesterDuty, BeaconCommitteeSubscription,
    BlockRoot, Data, Fork, Genesis, HeadEvent, ProducedBlock, ProposerDuties, ProposerPreparation,
    SignedAggregateAndProofElectra, SignedContributionAndProofJson,
    SignedValidatorRegistrationJson, SignedVoluntaryExitJson, SingleAttestation, Spec,
    SyncCommitteeContributionJson, SyncCommitteeMessage, SyncCommitteeSubscription, SyncDuty,
    Syncing, ValidatorEntry, ValidatorLiveness,
};

/// Timeout of one request. Too small and a loaded beacon node looks down (duties fail over or
/// are missed); too large and a dead node holds a duty past its deadline.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
/// Attempts over all nodes before a request fails.
pub const ATTEMPTS_MAX: usize = 3;
/// Pause between rounds of attempts.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Largest response body read (the attester duties of 100,000 validators are ~30 MB of
/// JSON); a longer one is abandoned at this many bytes and the request fails over.
pub const RESPONSE_BYTES_MAX: usize = 64 << 20;
/// Largest SSE line accepted from the events stream; longer input ends the stream.
pub const SSE_LINE_MAX: usize = 64 * 1024;
/// First pause before a node's head-event subscription is tried again after it ended or
/// failed; it doubles up to [`HEAD_RESUBSCRIBE_MAX`] while the node keeps failing and is
/// reset by the next event. Too small and a dead node is hammered with connection attempts;
/// too large and a node whose stream dropped misses heads for that long (the other nodes'
/// streams still carry them).
pub const HEAD_RESUBSCRIBE_MIN: Duration = Duration::from_millis(500);
/// Longest pause between two subscription attempts to one node.
pub const HEAD_RESUBSCRIBE_MAX: Duration = Duration::from_secs(30);

/// Errors of the beacon client.
#[derive(Debug, thiserror::Error)]
pub enum BeaconError {
    /// No beacon node URL configured.
    #[error("no beacon node configured")]
    NoNodes,
    /// Every node failed; the last error is kept.
    #[error("beacon node request {path} failed after {attempts} attempts: {last}")]
    Unavailable {
        /// The request path.
        path: String,
        /// Attempts made.
        attempts: usize,
        /// The last error.
        last: String,
    },
    /// The node rejected the request (4xx).
    #[error("beacon node rejected {path}: {status} {body}")]
    Rejected {
        /// The request path.
        path: String,
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
    /// The answer was not the JSON the API specifies.
    #[error("malformed answer to {path}: {reason}")]
    Malformed {
        /// The request path.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// Told of every HTTP request the client makes (one per attempt), for metrics. Called on the
/// request's task after the response is read; it must not block.
pub trait RequestObserver: Send + Sync {
    /// One request to `server` (`host:port`) of `method` on `route` (the path without its
    /// query, with numbers and `0x` hex replaced by `{id}`: a bounded set), which took `took`;
    /// `error` is the HTTP status of a failure (0: no response or an unreadable one), `None`
    /// on success.
    fn observe(&self, server: &str, method: &str, route: &str, took: Duration, error: Option<u16>);
}

/// `path` without its query string, each segment that is a number or `0x` hex replaced by
/// `{id}`.
pub fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    path.split('/')
        .map(|seg| {
            let numeric = !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit());
            if numeric || seg.starts_with("0x") {
                "{id}"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A client over one or more beacon nodes.
pub struct BeaconClient {
    observer: Option<std::sync::Arc<dyn RequestObserver>>,
    urls: Vec<String>,
    http: reqwest::Client,
    /// For the long-lived head-event streams: a connect timeout but no total one.
    events_http: reqwest::Client,
    /// Index of the node that answered last: among nodes of the same health, requests start
    /// there.
    preferred: AtomicUsize,
    /// What the last probe found of each node (index as in `urls`). A std mutex: held for a
    /// copy or a store, never across an await.
    health: Mutex<Vec<NodeHealth>>,
}

enum Attempt {
    Retry(String),
    Fatal(BeaconError),
}

/// Hex with `0x`, as the API writes byte fields in query strings.
fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Reads a response body of at most `max` bytes (refused up front when the declared length
/// is larger, abandoned as soon as the bytes read pass it).
async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    if let Some(len) = resp.content_length()
        && len > max as u64
    {
        return Err(format!("response of {len} bytes, more than {max}"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > max {
            return Err(format!("response longer than {max} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

impl BeaconClient {
    /// A client over `urls` (e.g. `http://127.0.0.1:5052`), tried in order.
    pub fn new(urls: Vec<String>) -> Result<Self, BeaconError> {
        if urls.is_empty() {
            return Err(BeaconError::NoNodes);
        }
        let built = |e: reqwest::Error| BeaconError::Malformed {
            path: String::new(),
            reason: e.to_string(),
        };
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(16)
            .build()
            .map_err(built)?;
        let events_http = reqwest::Client::builder()
            .connect_timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(built)?;
        let urls: Vec<String> = urls
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        let health = Mutex::new(vec![NodeHealth::Unknown; urls.len()]);
        Ok(BeaconClient {
            observer: None,
            urls,
            http,
            events_http,
            preferred: AtomicUsize::new(0),
            health,
        })
    }

    /// This client, telling `observer` of every request.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn RequestObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The configured nodes' URLs (without a trailing `/`), in configured order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// What the last probe found of each node, in configured order (for metrics and
    /// `/health`).
    pub fn health(&self) -> Vec<NodeHealth> {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The node requests go to first now (an index into [`BeaconClient::urls`]).
    pub fn first_choice(&self) -> usize {
        let health = self.health();
        attempt_order(&health, self.preferred.load(Ordering::Relaxed))[0]
    }

    /// Asks every node's `GET /eth/v1/node/syncing` (all at once, each within
    /// [`REQUEST_TIMEOUT`]), records what each answered ([`BeaconClient::health`]), moves
    /// the preference off a node that is no longer healthy, and logs every change. Returns
    /// the health found. With no healthy node it says so at error level each time: requests
    /// then go to every node in turn, lagging ones included, rather than stop.
    pub async fn probe_health(&self) -> Vec<NodeHealth> {
        const PATH: &str = "/eth/v1/node/syncing";
        let probes = (0..self.urls.len()).map(|i| async move {
            match self.try_once(i, PATH, None, &[]).await {
                Ok(raw) => match serde_json::from_slice::<Data<Syncing>>(&raw.bytes) {
                    Ok(d) => NodeHealth::judge(d.data),
                    Err(e) => NodeHealth::Unreachable(format!("malformed answer: {e}")),
                },
                Err(Attempt::Retry(e)) => NodeHealth::Unreachable(e),
                Err(Attempt::Fatal(e)) => NodeHealth::Unreachable(e.to_string()),
            }
        });
        let found: Vec<NodeHealth> = futures::future::join_all(probes).await;
        let before = std::mem::replace(
            &mut *self.health.lock().unwrap_or_else(PoisonError::into_inner),
            found.clone(),
        );
        for (i, (old, new)) in before.iter().zip(&found).enumerate() {
            if old.rank() == new.rank() {
                continue;
            }
            let node = &self.urls[i];
            match new {
                NodeHealth::Healthy(s) => {
                    tracing::info!(node, sync_distance = s.sync_distance, "beacon node healthy");
                }
                NodeHealth::Unhealthy { status, why } => tracing::warn!(
                    node,
                    sync_distance = status.sync_distance,
                    is_syncing = status.is_syncing,
                    is_optimistic = status.is_optimistic,
                    el_offline = status.el_offline,
                    tolerance = SYNC_DISTANCE_TOLERANCE,
                    "beacon node unhealthy ({why}): used only when no healthy node answers"
                ),
                NodeHealth::Unreachable(e) => {
                    tracing::warn!(node, error = %e, "beacon node not answering");
                }
                NodeHealth::Unknown => {}
            }
        }
        let old = self.preferred.load(Ordering::Relaxed);
        let new = preferred_after_probe(&found, old);
        if new != old {
            self.preferred.store(new, Ordering::Relaxed);
            tracing::info!(
                from = %self.urls[old % self.urls.len()],
                to = %self.urls[new],
                "preferred beacon node changed"
            );
        }
        if !found.iter().any(NodeHealth::is_healthy) {
            tracing::error!(
                nodes = ?self.urls,
                health = ?found,
                "NO HEALTHY BEACON NODE: requests go to every node in turn, lagging ones \
                 included; duties may fail or use stale data"
            );
        }
        found
    }

    async fn request<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&Payload>,
        headers: &[(&str, &str)],
    ) -> Result<Option<T>, BeaconError> {
        let raw = self.request_raw(path, body, headers).await?;
        if raw.bytes.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&raw.bytes)
            .map(Some)
            .map_err(|e| BeaconError::Malformed {
                path: path.to_string(),
                reason: e.to_string(),
            })
    }

    /// One request with fail-over: the body and the headers the block endpoints answer with.
    async fn request_raw(
        &self,
        path: &str,
        body: Option<&Payload>,
        headers: &[(&str, &str)],
    ) -> Result<Raw, BeaconError> {
        let n = self.urls.len();
        let health = self.health();
        let order = attempt_order(&health, self.preferred.load(Ordering::Relaxed));
        let best_rank = health[order[0]].rank();
        let mut last = String::new();
        for attempt in 0..ATTEMPTS_MAX * n {
            if attempt > 0 && attempt % n == 0 {
                tokio::time::sleep(RETRY_BACKOFF * (attempt / n) as u32).await;
            }
            let i = order[attempt % n];
            match self.try_once(i, path, body, headers).await {
                Ok(v) => {
                    // A node that answered when a healthier one did not is not preferred:
                    // the next request tries the healthier one first again.
                    if health[i].rank() <= best_rank {
                        self.preferred.store(i, Ordering::Relaxed);
                    }
                    return Ok(v);
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(e)) => {
                    tracing::debug!(node = %self.urls[i], path, error = %e, "beacon request failed");
                    last = e;
                }
            }
        }
        Err(BeaconError::Unavailable {
            path: path.to_string(),
            attempts: ATTEMPTS_MAX * n,
            last,
        })
    }

    async fn try_once(
        &self,
        i: usize,
        path: &str,
        body: Option<&Payload>,
        headers: &[(&str, &str)],
    ) -> Result<Raw, Attempt> {
        let Some(observer) = &self.observer else {
            return self.try_once_unobserved(i, path, body, headers).await;
        };
        let start = std::time::Instant::now();
        let result = self.try_once_unobserved(i, path, body, headers).await;
        let error = match &result {
            Ok(_) => None,
            Err(Attempt::Fatal(BeaconError::Rejected { status, .. })) => Some(*status),
            Err(Attempt::Retry(e)) => Some(
                e.split(':')
                    .next()
                    .and_then(|s| s.split_whitespace().next())
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
            ),
            Err(Attempt::Fatal(_)) => Some(0),
        };
        let server = self.urls[i]
            .split("://")
            .nth(1)
            .unwrap_or(&self.urls[i])
            .split('/')
            .next()
            .unwrap_or("");
        let method = if body.is_some() { "POST" } else { "GET" };
        observer.observe(server, method, &route_of(path), start.elapsed(), error);
        result
    }

    async fn try_once_unobserved(
        &self,
        i: usize,
        path: &str,
        body: Option<&Payload>,
        headers: &[(&str, &str)],
    ) -> Result<Raw, Attempt> {
        let url = format!("{}{path}", self.urls[i]);
        let mut req = match body {
            Some(Payload::Json(b)) => self
                .http
                .post(&url)
                .header("content-type", "application/json")
                .body(b.clone()),
            Some(Payload::Ssz(b)) => self
                .http
                .post(&url)
                .header("content-type", "application/octet-stream")
                .body(b.clone()),
            None => self.http.get(&url),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let status = resp.status();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let version = header("eth-consensus-version");
        let blinded = header("eth-execution-payload-blinded");
        let content_type = header("content-type");
        let bytes = read_capped(resp, RESPONSE_BYTES_MAX)
            .await
            .map_err(Attempt::Retry)?;
        if status.is_server_error() {
            return Err(Attempt::Retry(format!(
                "{status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        if !status.is_success() {
            return Err(Attempt::Fatal(BeaconError::Rejected {
                path: path.to_string(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).chars().take(512).collect(),
            }));
        }
        Ok(Raw {
            bytes,
            version,
            blinded,
            content_type,
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, BeaconError> {
        self.request(path, None, &[])
            .await?
            .ok_or_else(|| BeaconError::Malformed {
                path: path.to_string(),
                reason: "empty body".into(),
            })
    }

    async fn post<B: Serialize + Sync, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        headers: &[(&str, &str)],
    ) -> Result<Option<T>, BeaconError> {
        let body = Payload::Json(
            serde_json::to_vec(body).map_err(|e| BeaconError::Malformed {
                path: path.to_string(),
                reason: e.to_string(),
            })?,
        );
        self.request(path, Some(&body), headers).await
    }

    /// `GET /eth/v1/beacon/genesis`.
    pub async fn genesis(&self) -> Result<Genesis, BeaconError> {
        Ok(self
            .get::<Data<Genesis>>("/eth/v1/beacon/genesis")
            .await?
            .data)
    }

    /// `GET /eth/v1/config/spec`.
    pub async fn spec(&self) -> Result<Spec, BeaconError> {
        Ok(self.get::<Data<Spec>>("/eth/v1/config/spec").await?.data)
    }

    /// `GET /eth/v1/beacon/states/head/fork`.
    pub async fn fork(&self) -> Result<Fork, BeaconError> {
        Ok(self
            .get::<Data<Fork>>("/eth/v1/beacon/states/head/fork")
            .await?
            .data)
    }

    /// `GET /eth/v1/config/fork_schedule`: every fork with its activation epoch.
    pub async fn fork_schedule(&self) -> Result<Vec<Fork>, BeaconError> {
        Ok(self
            .get::<Data<Vec<Fork>>>("/eth/v1/config/fork_schedule")
            .await?
            .data)
    }

    /// `GET /eth/v1/node/syncing`.
    pub async fn syncing(&self) -> Result<Syncing, BeaconError> {
        Ok(self
            .get::<Data<Syncing>>("/eth/v1/node/syncing")
            .await?
            .data)
    }

    /// `POST /eth/v1/validator/duties/attester/{epoch}`.
    pub async fn attester_duties(
        &self,
        epoch: u64,
        indices: &[u64],
    ) -> Result<Vec<AttesterDuty>, BeaconError> {
        Ok(self.attester_duties_with_root(epoch, indices).await?.1)
    }

    /// `POST /eth/v1/validator/duties/attester/{epoch}` with the block root the duties depend
    /// on (`None`: an empty answer).
    pub async fn attester_duties_with_root(
        &self,
        epoch: u64,
        indices: &[u64],
    ) -> Result<(Option<[u8; 32]>, Vec<AttesterDuty>), BeaconError> {
        let body: Vec<String> = indices.iter().map(u64::to_string).collect();
        let path = format!("/eth/v1/validator/duties/attester/{epoch}");
        let r: Option<AttesterDuties> = self.post(&path, &body, &[]).await?;
        Ok(r.map_or((None, Vec::new()), |d| (Some(d.dependent_root), d.data)))
    }

    /// `POST /eth/v1/validator/duties/sync/{epoch}`.
    pub async fn sync_duties(
        &self,
        epoch: u64,
        indices: &[u64],
    ) -> Result<Vec<SyncDuty>, BeaconError> {
        let body: Vec<String> = indices.iter().map(u64::to_string).collect();
        let path = format!("/eth/v1/validator/duties/sync/{epoch}");
        let r: Option<Data<Vec<SyncDuty>>> = self.post(&path, &body, &[]).await?;
        Ok(r.map(|d| d.data).unwrap_or_default())
    }

    /// `POST /eth/v1/validator/liveness/{epoch}`: whether the beacon node saw each of
    /// `indices` live in `epoch` (doppelganger protection). The answer is returned as the
    /// node gave it; the caller keeps only the indices it asked about.
    pub async fn liveness(
        &self,
        epoch: u64,
        indices: &[u64],
    ) -> Result<Vec<ValidatorLiveness>, BeaconError> {
        let body: Vec<String> = indices.iter().map(u64::to_string).collect();
        let path = format!("/eth/v1/validator/liveness/{epoch}");
        let r: Option<Data<Vec<ValidatorLiveness>>> = self.post(&path, &body, &[]).await?;
        r.map(|d| d.data).ok_or_else(|| BeaconError::Malformed {
            path,
            reason: "empty body".into(),
        })
    }

    /// `GET /eth/v1/validator/attestation_data`.
    pub async fn attestation_data(
        &self,
        slot: u64,
        committee_index: u64,
    ) -> Result<AttestationData, BeaconError> {
        let path = format!(
            "/eth/v1/validator/attestation_data?slot={slot}&committee_index={committee_index}"
        );
        Ok(self.get::<Data<AttestationData>>(&path).await?.data)
    }

    /// `GET /eth/v1/beacon/blocks/{block_id}/root`.
    pub async fn block_root(&self, block_id: &str) -> Result<[u8; 32], BeaconError> {
        let path = format!("/eth/v1/beacon/blocks/{block_id}/root");
        Ok(self.get::<Data<BlockRoot>>(&path).await?.data.root)
    }

    /// `POST /eth/v1/beacon/states/head/validators` (by index or `0x` public key).
    pub async fn validators(&self, ids: &[String]) -> Result<Vec<ValidatorEntry>, BeaconError> {
        let body = serde_json::json!({ "ids": ids });
        let r: Option<Data<Vec<ValidatorEntry>>> = self
            .post("/eth/v1/beacon/states/head/validators", &body, &[])
            .await?;
        Ok(r.map(|d| d.data).unwrap_or_default())
    }

    /// `POST /eth/v2/beacon/pool/attestations` with Electra `SingleAttestation`s.
    pub async fn submit_attestations(&self, atts: &[SingleAttestation]) -> Result<(), BeaconError> {
        self.post::<_, serde_json::Value>(
            "/eth/v2/beacon/pool/attestations",
            &atts,
            &[("Eth-Consensus-Version", "electra")],
        )
        .await
        .map(drop)
    }

    /// `POST /eth/v1/beacon/pool/sync_committees`.
    pub async fn submit_sync_messages(
        &self,
        msgs: &[SyncCommitteeMessage],
    ) -> Result<(), BeaconError> {
        self.post::<_, serde_json::Value>("/eth/v1/beacon/pool/sync_committees", &msgs, &[])
            .await
            .map(drop)
    }

    /// `GET /eth/v1/validator/duties/proposer/{epoch}`: every proposer of the epoch.
    pub async fn proposer_duties(&self, epoch: u64) -> Result<ProposerDuties, BeaconError> {
        self.get(&format!("/eth/v1/validator/duties/proposer/{epoch}"))
            .await
    }

    /// `GET /eth/v3/validator/blocks/{slot}` in SSZ (`Accept: application/octet-stream`): the
    /// block to propose, full or blinded as the beacon node and its builder choose. A beacon
    /// node that answers in JSON is refused (the SSZ form is the one this node decodes).
    pub async fn produce_block(
        &self,
        slot: u64,
        randao_reveal: &[u8; 96],
        graffiti: &[u8; 32],
    ) -> Result<ProducedBlock, BeaconError> {
        let path = format!(
            "/eth/v3/validator/blocks/{slot}?randao_reveal={}&graffiti={}",
            hex0x(randao_reveal),
            hex0x(graffiti)
        );
        let raw = self
            .request_raw(&path, None, &[("accept", "application/octet-stream")])
            .await?;
        let malformed = |reason: String| BeaconError::Malformed {
            path: path.clone(),
            reason,
        };
        if raw
            .content_type
            .as_deref()
            .is_some_and(|c| c.contains("json"))
        {
            return Err(malformed(
                "block served as JSON; this node takes produced blocks in SSZ".into(),
            ));
        }
        let version = raw
            .version
            .ok_or_else(|| malformed("no Eth-Consensus-Version header".into()))?
            .to_ascii_lowercase();
        let blinded = match raw
            .blinded
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("true") => true,
            Some("false") => false,
            other => {
                return Err(malformed(format!(
                    "Eth-Execution-Payload-Blinded header {other:?}"
                )));
            }
        };
        Ok(ProducedBlock {
            version,
            blinded,
            ssz: raw.bytes,
        })
    }

    /// `POST /eth/v2/beacon/blocks` (full) or `/eth/v2/beacon/blinded_blocks` (blinded) with an
    /// SSZ body and the fork's `Eth-Consensus-Version`.
    pub async fn publish_block(
        &self,
        version: &str,
        blinded: bool,
        signed_ssz: Vec<u8>,
    ) -> Result<(), BeaconError> {
        let path = if blinded {
            "/eth/v2/beacon/blinded_blocks"
        } else {
            "/eth/v2/beacon/blocks"
        };
        self.request_raw(
            path,
            Some(&Payload::Ssz(signed_ssz)),
            &[("Eth-Consensus-Version", version)],
        )
        .await
        .map(drop)
    }

    /// `GET /eth/v2/validator/aggregate_attestation`: the best aggregate the beacon node has
    /// of `committee_index`'s attestations to the data of `attestation_data_root`.
    pub async fn aggregate_attestation(
        &self,
        slot: u64,
        attestation_data_root: &[u8; 32],
        committee_index: u64,
    ) -> Result<AttestationElectra, BeaconError> {
        let path = format!(
            "/eth/v2/validator/aggregate_attestation?attestation_data_root={}&slot={slot}&committee_index={committee_index}",
            hex0x(attestation_data_root)
        );
        Ok(self.get::<Data<AttestationElectra>>(&path).await?.data)
    }

    /// `POST /eth/v2/validator/aggregate_and_proofs` with Electra aggregates.
    pub async fn publish_aggregates(
        &self,
        aggregates: &[SignedAggregateAndProofElectra],
    ) -> Result<(), BeaconError> {
        self.post::<_, serde_json::Value>(
            "/eth/v2/validator/aggregate_and_proofs",
            &aggregates,
            &[("Eth-Consensus-Version", "electra")],
        )
        .await
        .map(drop)
    }

    /// `POST /eth/v1/validator/register_validator`: builder registrations (the beacon node
    /// forwards them to its builder network).
    pub async fn register_validators(
        &self,
        registrations: &[SignedValidatorRegistrationJson],
    ) -> Result<(), BeaconError> {
        self.post::<_, serde_json::Value>(
            "/eth/v1/validator/register_validator",
            &registrations,
            &[],
        )
        .await
        .map(drop)
    }

    /// `GET /eth/v1/validator/sync_committee_contribution`: the aggregate of a subcommittee's
    /// messages for `beacon_block_root` at `slot`.
    pub async fn sync_committee_contribution(
        &self,
        slot: u64,
        subcommittee_index: u64,
        beacon_block_root: &[u8; 32],
    ) -> Result<SyncCommitteeContributionJson, BeaconError> {
        let path = format!(
            "/eth/v1/validator/sync_committee_contribution?slot={slot}&subcommittee_index={subcommittee_index}&beacon_block_root={}",
            hex0x(beacon_block_root)
        );
        Ok(self
            .get::<Data<SyncCommitteeContributionJson>>(&path)
            .await?
            .data)
    }

    /// `POST /eth/v1/validator/contribution_and_proofs`.
    pub async fn publish_contributions(
        &self,
        contributions: &[SignedContributionAndProofJson],
    ) -> Result<(), BeaconError> {
        self.post::<_, serde_json::Value>(
            "/eth/v1/validator/contribution_and_proofs",
            &contributions,
            &[],
        )
        .await
        .map(drop)
    }

    /// `POST /eth/v1/beacon/pool/voluntary_exits`.
    pub async fn submit_exit(&self, exit: &SignedVoluntaryExitJson) -> Result<(), BeaconError> {
        self.post::<_, serde_json::Value>("/eth/v1/beacon/pool/voluntary_exits", exit, &[])
            .await
            .map(drop)
    }

    /// `POST /eth/v1/validator/prepare_beacon_proposer`: our validators' fee recipients, for
    /// the blocks the beacon node builds for them.
    pub async fn prepare_beacon_proposer(
        &self,
        preparations: &[ProposerPreparation],
    ) -> Result<(), BeaconError> {
        self.post::<_, serde_json::Value>(
            "/eth/v1/validator/prepare_beacon_proposer",
            &preparations,
            &[],
        )
        .await
        .map(drop)
    }

    /// `POST /eth/v1/validator/beacon_committee_subscriptions`.
    pub async fn beacon_committee_subscriptions(
        &self,
        subscriptions: &[BeaconCommitteeSubscription],
    ) -> Result<(), BeaconError> {
        self.post::<_, serde_json::Value>(
            "/eth/v1/validator/beacon_committee_subscriptions",
            &subscriptions,
            &[],
        )
        .await
        .map(drop)
    }

    /// `POST /eth/v1/validator/sync_committee_subscriptions`.
    pub async fn sync_committee_subscriptions(
        &self,
        subscriptions: &[SyncCommitteeSubscription],
    ) -> Result<(), BeaconError> {
        self.post::<_, serde_json::Value>(
            "/eth/v1/validator/sync_committee_subscriptions",
            &subscriptions,
            &[],
        )
        .await
        .map(drop)
    }

    /// `GET /eth/v1/events?topics=head` of every configured node, merged into one endless
    /// stream: each node's subscription is made again when it ends or fails (after
    /// [`HEAD_RESUBSCRIBE_MIN`], doubling to [`HEAD_RESUBSCRIBE_MAX`] while it keeps
    /// failing), and a head (slot, block root) already delivered by another node is dropped.
    /// Heads come in the order the nodes send them: a lagging node's older heads are in it,
    /// and the caller decides what an older head means. Dropping the stream closes every
    /// subscription.
    pub fn head_events(&self) -> BoxStream<'static, HeadEvent> {
        let per_node = self
            .urls
            .iter()
            .map(|url| node_head_events(self.events_http.clone(), url.clone()).boxed());
        let mut dedup = HeadDedup::default();
        futures::stream::select_all(per_node)
            .filter(move |ev| futures::future::ready(dedup.first_time(ev)))
            .boxed()
    }
}

/// One subscription attempt to `url`'s head events (the answer's headers within
/// [`REQUEST_TIMEOUT`]).
async fn subscribe_heads(
    http: &reqwest::Client,
    url: &str,
) -> Result<BoxStream<'static, HeadEvent>, String> {
    let send = http
        .get(format!("{url}/eth/v1/events?topics=head"))
        .header("accept", "text/event-stream")
        .send();
    match tokio::time::timeout(REQUEST_TIMEOUT, send).await {
        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
        Ok(Err(e)) => Err(e.to_string()),
        Ok(Ok(r)) if r.status().is_success() => Ok(sse_head_events(r.bytes_stream()).boxed()),
        Ok(Ok(r)) => Err(r.status().to_string()),
    }
}

/// The head events of one node, subscribed again (with backoff) whenever the stream ends or
/// the subscription fails; never ends.
fn node_head_events(http: reqwest::Client, url: String) -> impl Stream<Item = HeadEvent> + Send {
    struct State {
        http: reqwest::Client,
        url: String,
        events: Option<BoxStream<'static, HeadEvent>>,
        /// The pause before the next attempt (`None`: the first attempt, made at once).
        backoff: Option<Duration>,
    }
    let state = State {
        http,
        url,
        events: None,
        backoff: None,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(events) = &mut s.events {
                match events.next().await {
                    Some(ev) => {
                        s.backoff = Some(HEAD_RESUBSCRIBE_MIN);
                        return Some((ev, s));
                    }
                    None => {
                        s.events = None;
                        tracing::debug!(node = %s.url, "head event stream ended; resubscribing");
                    }
                }
            }
            if let Some(pause) = s.backoff {
                tokio::time::sleep(pause).await;
                s.backoff = Some((pause * 2).min(HEAD_RESUBSCRIBE_MAX));
            } else {
                s.backoff = Some(HEAD_RESUBSCRIBE_MIN);
            }
            match subscribe_heads(&s.http, &s.url).await {
                Ok(events) => s.events = Some(events),
                Err(e) => tracing::warn!(node = %s.url, "head events: {e}; trying again"),
            }
        }
    })
}

/// Parses `event: head` / `data: {...}` SSE frames into head events; other events and
/// malformed frames are skipped.
fn sse_head_events<S, B, E>(bytes: S) -> impl Stream<Item = HeadEvent> + Send
where
    S: Stream<Item = Result<B, E>> + Unpin + Send,
    E: Send,
    B: AsRef<[u8]> + Send,
{
    futures::stream::unfold(
        (bytes, Vec::<u8>::new(), None::<String>),
        |(mut s, mut buf, mut event)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let line = String::from_utf8_lossy(&line).trim_end().to_string();
                    if let Some(e) = line.strip_prefix("event:") {
                        event = Some(e.trim().to_string());
                    } else if let Some(d) = line.strip_prefix("data:") {
                        if event.as_deref() == Some("head")
                            && let Ok(ev) = serde_json::from_str::<HeadEvent>(d.trim())
                        {
                            return Some((ev, (s, buf, event)));
                        }
                    } else if line.is_empty() {
                        event = None;
                    }
                    continue;
                }
                if buf.len() > SSE_LINE_MAX {
                    return None;
                }
                match s.next().await {
                    Some(Ok(chunk)) => buf.extend_from_slice(chunk.as_ref()),
                    _ => return None,
                }
            }
        },
    )
}

/// A request body.
enum Payload {
    Json(Vec<u8>),
    Ssz(Vec<u8>),
}

/// A successful response: its body and the headers the block endpoints use.
struct Raw {
    bytes: Vec<u8>,
    version: Option<String>,
    blinded: Option<String>,
    content_type: Option<String>,
}

#[cfg(test)]
mod route_tests {
    use super::route_of;

    #[test]
    fn routes_hide_ids_and_queries() {
        assert_eq!(
            route_of("/eth/v1/validator/duties/attester/12"),
            "/eth/v1/validator/duties/attester/{id}"
        );
        assert_eq!(
            route_of("/eth/v1/validator/attestation_data?slot=5&committee_index=0"),
            "/eth/v1/validator/attestation_data"
        );
        assert_eq!(
            route_of("/eth/v3/validator/blocks/7?randao_reveal=0xab"),
            "/eth/v3/validator/blocks/{id}"
        );
        assert_eq!(
            route_of("/eth/v1/beacon/blocks/0xabcd/root"),
            "/eth/v1/beacon/blocks/{id}/root"
        );
    }
}
