//! The exporter's HTTP API, as the Go exporter serves it:
//!
//! * `GET|POST /v1/exporter/decideds` — decided duty participants by slot range, roles and
//!   optionally validators (`pubkeys`, `indices`); Go's `DecidedsRequest` as query
//!   parameters (comma-separated lists) or as a JSON body, Go's `DecidedsResponse`
//!   (`{"data": [{"role", "slot", "public_key", "message": {"Signers"}}], "errors"}`);
//! * `GET /stream` — a WebSocket on which every newly decided instance is pushed as Go's
//!   exporter `Message` (`{"type": "decided", "filter": {...}, "data": [ParticipantsAPI]}`),
//!   one per validator of the decided duty.
//!
//! Committee duties (attestations and sync-committee messages of a committee) are one QBFT
//! instance per committee and slot: `ATTESTER` and `SYNC_COMMITTEE` both read the committee's
//! decided instances and list every validator of the committee with its signers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use ssv_protocol::committee::CommitteeId;
use ssv_protocol::message::{MessageId, RunnerRole};
use ssv_protocol::types::DomainType;
use ssv_storage::{CommitteeMap, DecidedRecord, Store};
use tokio::sync::broadcast;

/// Most rows one query reads; a query matching more is refused (narrow the range).
pub const QUERY_ROWS_MAX: usize = 20_000;
/// Most participant entries one response holds (a committee instance stands for each of its
/// validators, so this is checked as entries are added, not only on rows read).
pub const RESPONSE_ENTRIES_MAX: usize = 100_000;
/// Most validators named in one query.
pub const QUERY_VALIDATORS_MAX: usize = 1_000;
/// Stream messages buffered per WebSocket client; a client further behind skips the oldest
/// (it is told nothing else: the query API is there to fill gaps).
pub const STREAM_QUEUE_MAX: usize = 4096;

/// Beacon roles as the Go API names them, with their wire number (`spectypes.BeaconRole`).
const BEACON_ROLES: [(&str, u32); 7] = [
    ("ATTESTER", 0),
    ("AGGREGATOR", 1),
    ("PROPOSER", 2),
    ("SYNC_COMMITTEE", 3),
    ("SYNC_COMMITTEE_CONTRIBUTION", 4),
    ("VALIDATOR_REGISTRATION", 5),
    ("VOLUNTARY_EXIT", 6),
];

fn runner_role(beacon_role: &str) -> Option<RunnerRole> {
    Some(match beacon_role {
        "ATTESTER" | "SYNC_COMMITTEE" => RunnerRole::Committee,
        "AGGREGATOR" => RunnerRole::Aggregator,
        "PROPOSER" => RunnerRole::Proposer,
        "SYNC_COMMITTEE_CONTRIBUTION" => RunnerRole::SyncCommitteeContribution,
        "VALIDATOR_REGISTRATION" => RunnerRole::ValidatorRegistration,
        "VOLUNTARY_EXIT" => RunnerRole::VoluntaryExit,
        _ => return None,
    })
}

/// The beacon role a decided instance of `role` is reported under on the stream.
fn stream_role(role: RunnerRole) -> &'static str {
    match role {
        // A committee decides attestations and sync-committee messages together; Go tells
        // them apart by the post-consensus signing roots, which we do not track.
        RunnerRole::Committee => "ATTESTER",
        RunnerRole::Aggregator => "AGGREGATOR",
        RunnerRole::Proposer => "PROPOSER",
        RunnerRole::SyncCommitteeContribution => "SYNC_COMMITTEE_CONTRIBUTION",
        RunnerRole::ValidatorRegistration => "VALIDATOR_REGISTRATION",
        RunnerRole::VoluntaryExit => "VOLUNTARY_EXIT",
    }
}

/// The validators of every committee, from the store's registry.
#[derive(Debug, Default)]
pub struct ExporterIndex {
    committee_validators: HashMap<[u8; 32], Vec<[u8; 48]>>,
    by_pubkey: HashMap<[u8; 48], [u8; 32]>,
    by_index: HashMap<u64, [u8; 48]>,
}

impl ExporterIndex {
    /// Every committee's validators (with or without a beacon index) in `map`.
    pub fn from_map(map: &CommitteeMap) -> Self {
        let mut index = ExporterIndex::default();
        for entry in map.committees.values() {
            let id = CommitteeId::from_operators(&entry.operator_ids).0;
            let list = index.committee_validators.entry(id).or_default();
            for v in &entry.validators {
                list.push(v.pubkey);
                index.by_pubkey.insert(v.pubkey, id);
                if let Some(i) = v.index {
                    index.by_index.insert(i, v.pubkey);
                }
            }
        }
        index
    }
}

/// The current [`ExporterIndex`], swapped whole when the registry is rebuilt (contract
/// sync in exporter mode); readers take a snapshot per request.
#[derive(Debug, Clone, Default)]
pub struct LiveIndex(Arc<std::sync::RwLock<Arc<ExporterIndex>>>);

impl LiveIndex {
    /// A live index holding `index`.
    pub fn new(index: ExporterIndex) -> Self {
        LiveIndex(Arc::new(std::sync::RwLock::new(Arc::new(index))))
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<ExporterIndex> {
        // A writer cannot panic while holding the lock (it only swaps an Arc).
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the snapshot.
    pub fn set(&self, index: Arc<ExporterIndex>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = index;
    }
}

/// What the handlers share.
pub struct ApiState {
    /// The store holding the decided history.
    pub store: Arc<Store>,
    /// Committees' validators (current snapshot per request).
    pub index: LiveIndex,
    /// Our network's domain (decided identifiers carry it).
    pub domain: DomainType,
    /// Newly decided instances, as stream JSON.
    pub stream: broadcast::Sender<Arc<str>>,
}

/// The exporter's routes.
pub fn router(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new()
        .route(
            "/v1/exporter/decideds",
            get(decideds_get).post(decideds_post),
        )
        .route("/stream", get(stream))
        .with_state(state)
}

/// Go's `DecidedsRequest` as a JSON body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecidedsRequest {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    to: u64,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    pubkeys: Vec<String>,
    #[serde(default)]
    indices: Vec<u64>,
}

/// Go's `DecidedsRequest` as query parameters (lists comma-separated).
#[derive(Debug, Deserialize)]
pub struct DecidedsQuery {
    from: Option<u64>,
    to: Option<u64>,
    roles: Option<String>,
    pubkeys: Option<String>,
    indices: Option<String>,
}

/// One participant entry (Go's `DecidedParticipant`).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DecidedParticipant {
    role: String,
    slot: u64,
    public_key: String,
    message: Signers,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Signers {
    #[serde(rename = "Signers")]
    signers: Vec<u64>,
}

#[derive(Debug, Serialize)]
struct DecidedsResponse {
    data: Vec<DecidedParticipant>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ErrorResponse {
    status: &'static str,
    error: String,
}

fn bad_request(error: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(ErrorResponse {
            status: "Bad Request",
            error,
        }),
    )
        .into_response()
}

fn list(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

async fn decideds_get(
    State(state): State<Arc<ApiState>>,
    query: Result<Query<DecidedsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return bad_request(e.body_text()),
    };
    let mut indices = Vec::new();
    for i in list(q.indices) {
        match i.parse::<u64>() {
            Ok(i) => indices.push(i),
            Err(_) => return bad_request(format!("index {i:?} is not a number")),
        }
    }
    let req = DecidedsRequest {
        from: q.from.unwrap_or(0),
        to: q.to.unwrap_or(0),
        roles: list(q.roles),
        pubkeys: list(q.pubkeys),
        indices,
    };
    decideds(&state, req).await
}

async fn decideds_post(
    State(state): State<Arc<ApiState>>,
    body: Result<Json<DecidedsRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match body {
        Ok(Json(req)) => decideds(&state, req).await,
        Err(e) => bad_request(e.body_text()),
    }
}

async fn decideds(state: &Arc<ApiState>, req: DecidedsRequest) -> Response {
    if req.from > req.to {
        return bad_request("'from' must be less than or equal to 'to'".into());
    }
    if req.roles.is_empty() {
        return bad_request("at least one role is required".into());
    }
    let mut roles = Vec::new();
    for r in &req.roles {
        let name = r.to_ascii_uppercase();
        match runner_role(&name) {
            Some(role) => roles.push((name, role)),
            None => return bad_request(format!("unknown role {r:?}")),
        }
    }
    if req.pubkeys.len() + req.indices.len() > QUERY_VALIDATORS_MAX {
        return bad_request(format!(
            "at most {QUERY_VALIDATORS_MAX} validators per query"
        ));
    }
    let mut pubkeys = Vec::new();
    for p in &req.pubkeys {
        let digits = p.strip_prefix("0x").unwrap_or(p);
        match hex::decode(digits)
            .ok()
            .and_then(|b| <[u8; 48]>::try_from(b).ok())
        {
            Some(pk) => pubkeys.push(pk),
            None => return bad_request(format!("invalid pubkey: {p}")),
        }
    }
    let mut errors = Vec::new();
    let index = state.index.get();
    for i in &req.indices {
        match index.by_index.get(i) {
            Some(pk) => pubkeys.push(*pk),
            None => errors.push(format!("validator not found by index: {i}")),
        }
    }
    pubkeys.sort_unstable();
    pubkeys.dedup();
    let filtered = !req.pubkeys.is_empty() || !req.indices.is_empty();
    let state = state.clone();
    let (from, to) = (req.from, req.to);
    // MDBX reads are blocking; keep them off the async workers.
    let result = tokio::task::spawn_blocking(move || {
        collect(&state, &roles, from, to, filtered.then_some(&pubkeys[..]))
    })
    .await;
    match result {
        Ok(Ok(data)) => Json(DecidedsResponse { data, errors }).into_response(),
        Ok(Err(QueryError::TooMany)) => bad_request(format!(
            "more than {QUERY_ROWS_MAX} decided instances or {RESPONSE_ENTRIES_MAX} entries \
             match: narrow the slot range"
        )),
        Ok(Err(QueryError::Store(e))) => {
            tracing::error!("exporter query: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(ErrorResponse {
                    status: "Internal Server Error",
                    error: format!("error getting participants: {e}"),
                }),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!("exporter query task: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

enum QueryError {
    TooMany,
    Store(ssv_storage::StorageError),
}

impl From<ssv_storage::StorageError> for QueryError {
    fn from(e: ssv_storage::StorageError) -> Self {
        QueryError::Store(e)
    }
}

fn participant(role: &str, r: &DecidedRecord, pubkey: &[u8; 48]) -> DecidedParticipant {
    DecidedParticipant {
        role: role.to_owned(),
        slot: r.height,
        public_key: hex::encode(pubkey),
        message: Signers {
            signers: r.signers.clone(),
        },
    }
}

fn collect(
    state: &ApiState,
    roles: &[(String, RunnerRole)],
    from: u64,
    to: u64,
    pubkeys: Option<&[[u8; 48]]>,
) -> Result<Vec<DecidedParticipant>, QueryError> {
    let mut out = Vec::new();
    let index = state.index.get();
    for (name, role) in roles {
        match pubkeys {
            Some(pubkeys) => {
                for pk in pubkeys {
                    let id = match role {
                        RunnerRole::Committee => match index.by_pubkey.get(pk) {
                            Some(cid) => MessageId::for_committee(state.domain, &CommitteeId(*cid)),
                            None => continue,
                        },
                        _ => MessageId::for_validator(state.domain, *role, pk),
                    };
                    let range = state
                        .store
                        .decided_history(&id.0, from, to, QUERY_ROWS_MAX)?;
                    if range.truncated {
                        return Err(QueryError::TooMany);
                    }
                    out.extend(
                        range
                            .records
                            .iter()
                            .filter(|r| !r.signers.is_empty())
                            .map(|r| participant(name, r, pk)),
                    );
                    if out.len() > RESPONSE_ENTRIES_MAX {
                        return Err(QueryError::TooMany);
                    }
                }
            }
            None => {
                let domain = state.domain;
                let range = state
                    .store
                    .decided_history_all(from, to, QUERY_ROWS_MAX, |id| {
                        let id = MessageId(*id);
                        id.domain() == domain && id.role() == Some(*role)
                    })?;
                if range.truncated {
                    return Err(QueryError::TooMany);
                }
                for r in range.records.iter().filter(|r| !r.signers.is_empty()) {
                    for pk in validators_of(&index, *role, &MessageId(r.identifier)) {
                        out.push(participant(name, r, &pk));
                    }
                    if out.len() > RESPONSE_ENTRIES_MAX {
                        return Err(QueryError::TooMany);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The validators a decided instance of `role` with identifier `id` stands for.
fn validators_of(index: &ExporterIndex, role: RunnerRole, id: &MessageId) -> Vec<[u8; 48]> {
    let executor = id.duty_executor_id();
    match role {
        RunnerRole::Committee => {
            let mut cid = [0u8; 32];
            cid.copy_from_slice(&executor[16..]);
            index
                .committee_validators
                .get(&cid)
                .cloned()
                .unwrap_or_default()
        }
        _ => vec![*executor],
    }
}

/// Go's exporter stream message (`api.Message` of `NewParticipantsAPIMsg`).
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamMessage {
    /// `decided`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The slot, role and validator of `data`.
    pub filter: StreamFilter,
    /// One `ParticipantsAPI` entry.
    pub data: Vec<ParticipantsApi>,
}

/// Go's `MessageFilter`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamFilter {
    /// First slot.
    pub from: u64,
    /// Last slot.
    pub to: u64,
    /// Beacon role name.
    pub role: String,
    /// Validator public key, hex without `0x`.
    #[serde(rename = "publicKey")]
    pub public_key: String,
}

/// Go's `ParticipantsAPI` (the commit message it describes, and the duty's validator).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ParticipantsApi {
    /// Operators whose commits decided the instance.
    pub signers: Vec<u64>,
    /// The slot.
    pub slot: u64,
    /// Go's legacy message ID (domain, validator public key, beacon role), base64.
    pub identifier: String,
    /// Validator public key, hex.
    #[serde(rename = "ValidatorPK")]
    pub validator_pk: String,
    /// Beacon role name.
    pub role: String,
    /// The commit message (`specqbft.Message` as Go encodes it).
    pub message: CommitJson,
}

/// `specqbft.Message` in Go's JSON.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CommitJson {
    /// 2: commit.
    pub msg_type: u64,
    /// The slot.
    pub height: u64,
    /// The decided round (Go's exporter always writes 1).
    pub round: u64,
    /// Base64 of the legacy identifier.
    pub identifier: String,
    /// The decided value's root, as Go encodes a `[32]byte` (32 numbers).
    pub root: Vec<u8>,
}

/// The stream messages of one decided instance: one per validator it stands for.
pub fn stream_messages(
    index: &ExporterIndex,
    domain: DomainType,
    record: &DecidedRecord,
) -> Vec<String> {
    let id = MessageId(record.identifier);
    let Some(role) = id.role() else {
        return Vec::new();
    };
    let name = stream_role(role);
    let beacon_role = BEACON_ROLES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, r)| *r);
    let mut out = Vec::new();
    for pk in validators_of(index, role, &id) {
        let mut legacy = [0u8; 56];
        legacy[..4].copy_from_slice(&domain.0);
        legacy[4..52].copy_from_slice(&pk);
        legacy[52..].copy_from_slice(&beacon_role.to_le_bytes());
        let identifier = base64::engine::general_purpose::STANDARD.encode(legacy);
        let msg = StreamMessage {
            kind: "decided".into(),
            filter: StreamFilter {
                from: record.height,
                to: record.height,
                role: name.into(),
                public_key: hex::encode(pk),
            },
            data: vec![ParticipantsApi {
                signers: record.signers.clone(),
                slot: record.height,
                identifier: identifier.clone(),
                validator_pk: hex::encode(pk),
                role: name.into(),
                message: CommitJson {
                    msg_type: 2,
                    height: record.height,
                    round: record.round,
                    identifier,
                    root: record.value_root.to_vec(),
                },
            }],
        };
        match serde_json::to_string(&msg) {
            Ok(s) => out.push(s),
            Err(e) => tracing::error!("encoding a stream message: {e}"),
        }
    }
    out
}

async fn stream(State(state): State<Arc<ApiState>>, ws: WebSocketUpgrade) -> Response {
    let rx = state.stream.subscribe();
    ws.on_upgrade(move |socket| serve_stream(socket, rx))
}

async fn serve_stream(mut socket: WebSocket, mut rx: broadcast::Receiver<Arc<str>>) {
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Ok(text) => {
                    if socket.send(WsMessage::Text(text.as_ref().into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "stream client too slow: oldest messages skipped");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                // Clients have nothing to say on the stream; a close or an error ends it.
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_to_runner_roles() {
        for (name, _) in BEACON_ROLES {
            let role = runner_role(name).expect("known role");
            if role != RunnerRole::Committee {
                assert_eq!(stream_role(role), name);
            }
        }
        assert_eq!(runner_role("ATTESTER"), Some(RunnerRole::Committee));
        assert_eq!(runner_role("SYNC_COMMITTEE"), Some(RunnerRole::Committee));
        assert_eq!(runner_role("BOGUS"), None);
    }

    #[test]
    fn lists_split_on_commas() {
        assert_eq!(list(Some("a, b,,c".into())), vec!["a", "b", "c"]);
        assert!(list(None).is_empty());
    }
}
