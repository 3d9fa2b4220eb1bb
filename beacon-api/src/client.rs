//! A Beacon API client for the endpoints committee duties need, over several beacon nodes:
//! each request goes to the first healthy node and fails over to the next on a transport
//! error, a timeout or a 5xx answer; a 4xx answer is the request's fault and is not retried.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

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

/// A client over one or more beacon nodes.
pub struct BeaconClient {
    urls: Vec<String>,
    http: reqwest::Client,
    /// Index of the node that answered last: requests start there.
    preferred: AtomicUsize,
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
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(16)
            .build()
            .map_err(|e| BeaconError::Malformed {
                path: String::new(),
                reason: e.to_string(),
            })?;
        let urls = urls
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        Ok(BeaconClient {
            urls,
            http,
            preferred: AtomicUsize::new(0),
        })
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
        let start = self.preferred.load(Ordering::Relaxed) % n;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS_MAX * n {
            if attempt > 0 && attempt % n == 0 {
                tokio::time::sleep(RETRY_BACKOFF * (attempt / n) as u32).await;
            }
            let i = (start + attempt) % n;
            match self.try_once(i, path, body, headers).await {
                Ok(v) => {
                    self.preferred.store(i, Ordering::Relaxed);
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
        let body: Vec<String> = indices.iter().map(u64::to_string).collect();
        let path = format!("/eth/v1/validator/duties/attester/{epoch}");
        let r: Option<AttesterDuties> = self.post(&path, &body, &[]).await?;
        Ok(r.map(|d| d.data).unwrap_or_default())
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

    /// `GET /eth/v1/events?topics=head` as a stream of head events from the first node that
    /// accepts the subscription. The stream ends when the connection does; callers
    /// resubscribe.
    pub async fn head_events(&self) -> Result<BoxStream<'static, HeadEvent>, BeaconError> {
        let mut last = String::new();
        for url in &self.urls {
            let resp = reqwest::Client::new()
                .get(format!("{url}/eth/v1/events?topics=head"))
                .header("accept", "text/event-stream")
                .send()
                .await;
            match resp {
                Ok(r) if r.status().is_success() => {
                    return Ok(sse_head_events(r.bytes_stream()).boxed());
                }
                Ok(r) => last = format!("{}", r.status()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(BeaconError::Unavailable {
            path: "/eth/v1/events".into(),
            attempts: self.urls.len(),
            last,
        })
    }
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
