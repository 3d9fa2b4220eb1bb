//! The node HTTP API, with the Go node's routes and JSON (`api/server`, `api/handlers/node`,
//! `api/handlers/validators`):
//!
//! * `GET /v1/node/identity`: our peer ID, listen addresses, subnets, version;
//! * `GET /v1/node/peers`: connected peers, their connections and advertised metadata;
//! * `GET /v1/node/topics`: every peer, and the peers of each gossip topic;
//! * `GET /v1/node/health`: the health report (see [`super::health`]);
//! * `GET /v1/validators`: the registry's validators, filtered (see [`validators`]);
//! * `GET /health`: `200` when healthy, else `500` with `{"errors": [...]}`.
//!
//! Errors answer as the Go node's `api.ErrorResponse`. Every answer carries
//! `X-SSV-Node-Version`. At most [`API_CONCURRENCY_MAX`] requests are served at once (the
//! Go server's throttle); more get `429`.
//!
//! [`router`] builds the routes over an [`ApiState`], so that other route sets (the
//! exporter's) can be merged into the same server.

pub mod error;
pub mod validators;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use ssv_netio::{NetworkHandle, PeerInfo, Subnets};
use ssv_storage::Store;

use super::health::HealthSources;
use error::ApiError;

/// Requests served at once (the Go server's `Throttle(NumCPU * 4)` on a 4-core machine).
/// Each holds at most a store read snapshot or a network-thread query; past this a client is
/// told to come back (`429`) rather than queued without bound.
pub const API_CONCURRENCY_MAX: usize = 16;
/// How long a handler waits for the network thread. It answers within milliseconds unless
/// it is overloaded; the API must not hang with it.
pub const NETWORK_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The response header of every answer (the Go server's `middlewareNodeVersion`).
pub const VERSION_HEADER: &str = "X-SSV-Node-Version";

/// What the handlers read.
pub struct ApiState {
    /// The network thread.
    pub network: NetworkHandle,
    /// The store (shares, metadata).
    pub store: Arc<Store>,
    /// The health probes.
    pub health: Arc<HealthSources>,
    /// Our node version, as the handshake advertises it.
    pub version: String,
    /// The concurrency bound.
    permits: tokio::sync::Semaphore,
}

impl ApiState {
    /// The state of a server.
    pub fn new(
        network: NetworkHandle,
        store: Arc<Store>,
        health: Arc<HealthSources>,
        version: String,
    ) -> Self {
        ApiState {
            network,
            store,
            health,
            version,
            permits: tokio::sync::Semaphore::new(API_CONCURRENCY_MAX),
        }
    }
}

/// The Go node's `identityJSON`.
#[derive(Debug, Serialize)]
pub struct IdentityJson {
    /// Our peer ID.
    pub peer_id: String,
    /// Our listen multiaddresses.
    pub addresses: Vec<String>,
    /// Our subnets, hex.
    pub subnets: String,
    /// Our node version.
    pub version: String,
}

/// The Go node's `connectionJSON`.
#[derive(Debug, Serialize)]
pub struct ConnectionJson {
    /// Remote multiaddress.
    pub address: String,
    /// `Inbound` or `Outbound` (libp2p's `network.Direction` names).
    pub direction: String,
}

/// The Go node's `peerJSON`.
#[derive(Debug, Serialize)]
pub struct PeerJson {
    /// Peer ID.
    pub id: String,
    /// Its addresses (the remote addresses of its connections).
    pub addresses: Vec<String>,
    /// Its connections.
    pub connections: Vec<ConnectionJson>,
    /// `Connected` (only connected peers are listed, as Go's `network.Peers()`).
    pub connectedness: String,
    /// The subnets its handshake advertised, hex (all zero when unknown, as Go).
    pub subnets: String,
    /// The version its handshake advertised (`""` when unknown).
    pub version: String,
}

/// The Go node's `topicIndexJSON`.
#[derive(Debug, Serialize)]
pub struct TopicJson {
    /// Topic name.
    pub topic: String,
    /// Peers subscribed to it.
    pub peers: Vec<String>,
}

/// The Go node's `AllPeersAndTopicsJSON`.
#[derive(Debug, Serialize)]
pub struct PeersAndTopicsJson {
    /// Every connected peer.
    pub all_peers: Vec<String>,
    /// Peers by topic.
    pub peers_by_topic: Vec<TopicJson>,
}

impl From<&PeerInfo> for PeerJson {
    fn from(p: &PeerInfo) -> Self {
        let mut addresses: Vec<String> = p
            .connections
            .iter()
            .map(|c| c.address.to_string())
            .collect();
        addresses.sort();
        addresses.dedup();
        PeerJson {
            id: p.id.to_string(),
            addresses,
            connections: p
                .connections
                .iter()
                .map(|c| ConnectionJson {
                    address: c.address.to_string(),
                    direction: if c.outbound { "Outbound" } else { "Inbound" }.into(),
                })
                .collect(),
            connectedness: "Connected".into(),
            subnets: p.subnets.clone().unwrap_or_else(|| Subnets::NONE.to_hex()),
            version: p.version.clone().unwrap_or_default(),
        }
    }
}

async fn network<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, ssv_netio::NetioError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(NETWORK_QUERY_TIMEOUT, f).await {
        Ok(Ok(x)) => Ok(x),
        Ok(Err(e)) => Err(ApiError::Internal(format!("{what}: {e}"))),
        Err(_) => Err(ApiError::Internal(format!(
            "{what}: the network thread did not answer within {NETWORK_QUERY_TIMEOUT:?}"
        ))),
    }
}

async fn identity(State(s): State<Arc<ApiState>>) -> Result<Json<IdentityJson>, ApiError> {
    let stats = network("network stats", s.network.stats()).await?;
    Ok(Json(IdentityJson {
        peer_id: s.network.peer_id().to_string(),
        addresses: s
            .network
            .listen_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect(),
        subnets: stats.subscribed.to_hex(),
        version: s.version.clone(),
    }))
}

async fn peers(State(s): State<Arc<ApiState>>) -> Result<Json<Vec<PeerJson>>, ApiError> {
    let peers = network("peers", s.network.peer_infos()).await?;
    Ok(Json(peers.iter().map(PeerJson::from).collect()))
}

async fn topics(State(s): State<Arc<ApiState>>) -> Result<Json<PeersAndTopicsJson>, ApiError> {
    let peers = network("peers", s.network.connected_peers()).await?;
    let by_topic = network("peers by topic", s.network.peers_by_topic()).await?;
    Ok(Json(PeersAndTopicsJson {
        all_peers: peers.iter().map(|p| p.to_string()).collect(),
        peers_by_topic: by_topic
            .into_iter()
            .map(|(topic, peers)| TopicJson {
                topic,
                peers: peers.iter().map(|p| p.to_string()).collect(),
            })
            .collect(),
    }))
}

/// The Go server's content negotiation (`httputil.NegotiateContentType` over the offers
/// `text/plain`, `application/json`, default JSON): the offer with the highest `q`, an exact
/// match beating `type/*` beating `*/*`, the first offer on a tie. So `Accept: */*` (curl's)
/// gets `text/plain`, and no `Accept` gets JSON.
pub fn negotiate(accept: Option<&str>) -> &'static str {
    const OFFERS: [&str; 2] = ["text/plain", "application/json"];
    let specs: Vec<(String, f64)> = accept
        .unwrap_or("")
        .split(',')
        .filter_map(|part| {
            let mut it = part.split(';');
            let value = it.next()?.trim().to_ascii_lowercase();
            if value.is_empty() {
                return None;
            }
            let mut q = 1.0;
            for param in it {
                if let Some(v) = param.trim().strip_prefix("q=") {
                    q = v.trim().parse::<f64>().unwrap_or(0.0);
                }
            }
            Some((value, q))
        })
        .collect();
    let (mut best, mut best_q, mut best_wild) = ("application/json", -1.0, 3);
    for offer in OFFERS {
        for (value, q) in &specs {
            let q = *q;
            if q == 0.0 || q < best_q {
                continue;
            }
            if value == "*/*" {
                if q > best_q || best_wild > 2 {
                    (best, best_q, best_wild) = (offer, q, 2);
                }
            } else if let Some(prefix) = value.strip_suffix('*') {
                if offer.starts_with(prefix) && (q > best_q || best_wild > 1) {
                    (best, best_q, best_wild) = (offer, q, 1);
                }
            } else if value == offer && (q > best_q || best_wild > 0) {
                (best, best_q, best_wild) = (offer, q, 0);
            }
        }
    }
    best
}

/// As the Go handler: JSON, or (negotiated `text/plain`) the report as indented JSON text.
async fn node_health(State(s): State<Arc<ApiState>>, headers: axum::http::HeaderMap) -> Response {
    let report = s.health.report().await;
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if negotiate(accept) == "text/plain" {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8",
                )],
                text,
            )
                .into_response(),
            Err(e) => ApiError::Internal(format!("rendering the report: {e}")).into_response(),
        }
    } else {
        Json(report).into_response()
    }
}

async fn list_validators(
    State(s): State<Arc<ApiState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<validators::ValidatorsResponse>, ApiError> {
    let req = validators::ValidatorsRequest::parse(query.as_deref().unwrap_or(""))?;
    let store = s.store.clone();
    let data = tokio::task::spawn_blocking(move || validators::list(&store, &req))
        .await
        .map_err(|e| ApiError::Internal(format!("listing validators: {e}")))??;
    Ok(Json(validators::ValidatorsResponse { data }))
}

/// `{"errors": [...]}` of an unhealthy `/health`.
#[derive(Debug, Serialize)]
struct HealthErrors {
    errors: Vec<String>,
}

async fn health(State(s): State<Arc<ApiState>>) -> Response {
    health_response(&s.health).await
}

/// Go's health answer: `200` and an empty line when healthy, else `500` with
/// `{"errors": [...]}` (served on the API and on the metrics port).
pub async fn health_response(sources: &HealthSources) -> Response {
    let errors = sources.report().await.errors();
    if errors.is_empty() {
        (StatusCode::OK, "\n").into_response()
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(HealthErrors { errors }),
        )
            .into_response()
    }
}

/// The throttle, the version header and the Go server's debug line per request
/// (`served SSV API request` with method, path, status and duration).
async fn around(State(s): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let mut resp = match s.permits.try_acquire() {
        Ok(_permit) => next.run(req).await,
        Err(_) => (StatusCode::TOO_MANY_REQUESTS, "Server capacity exceeded.\n").into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&s.version) {
        resp.headers_mut().insert(VERSION_HEADER, v);
    }
    tracing::debug!(
        %method,
        path,
        status = resp.status().as_u16(),
        took_us = started.elapsed().as_micros() as u64,
        "served SSV API request"
    );
    resp
}

/// The API's routes over `state` (merge other routers into it before serving).
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/node/identity", get(identity))
        .route("/v1/node/peers", get(peers))
        .route("/v1/node/topics", get(topics))
        .route("/v1/node/health", get(node_health))
        .route("/v1/validators", get(list_validators))
        .route("/health", get(health))
        .layer(axum::middleware::from_fn_with_state(state.clone(), around))
        .with_state(state)
}

/// Serves `router` on `addr` until the task is dropped; returns the bound address.
pub async fn serve(addr: SocketAddr, router: Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("API server stopped: {e}");
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::health::{Eth1Probe, PeerFloor};
    use serde_json::Value;
    use ssv_beacon_api::client::BeaconClient;
    use ssv_netio::{PeerConnection, PeerId};
    use ssv_storage::{
        ShareRecord, StoreConfig, ValidatorMetadata, ValidatorStatus, WriteOp, committee_id,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Example documents of the Go node's answers (`node/tests/data/api/`).
    fn example(name: &str) -> Value {
        let path = format!("{}/tests/data/api/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("example document");
        serde_json::from_str(&text).expect("example is JSON")
    }

    fn kind(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(n) if n.is_u64() => "unsigned",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// Same keys and value types, recursively; each element of an array against the
    /// example's first.
    fn same_shape(ours: &Value, go: &Value, at: &str) -> Result<(), String> {
        if kind(ours) != kind(go) {
            return Err(format!("{at}: {} where Go has {}", kind(ours), kind(go)));
        }
        match (ours, go) {
            (Value::Object(a), Value::Object(b)) => {
                let ka: Vec<_> = a.keys().collect();
                let kb: Vec<_> = b.keys().collect();
                if ka != kb {
                    return Err(format!("{at}: keys {ka:?} where Go has {kb:?}"));
                }
                for (k, v) in a {
                    same_shape(v, &b[k], &format!("{at}.{k}"))?;
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                if let Some(first) = b.first() {
                    for (i, v) in a.iter().enumerate() {
                        same_shape(v, first, &format!("{at}[{i}]"))?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    #[test]
    fn content_negotiation_is_gos() {
        assert_eq!(negotiate(None), "application/json");
        assert_eq!(negotiate(Some("")), "application/json");
        assert_eq!(negotiate(Some("*/*")), "text/plain", "first offer on a tie");
        assert_eq!(negotiate(Some("application/json")), "application/json");
        assert_eq!(negotiate(Some("text/plain")), "text/plain");
        assert_eq!(negotiate(Some("text/*")), "text/plain");
        assert_eq!(
            negotiate(Some("text/plain;q=0.5, application/json")),
            "application/json"
        );
        assert_eq!(
            negotiate(Some("application/json;q=0.9, */*;q=0.9")),
            "application/json",
            "an exact match beats */* at the same q"
        );
        assert_eq!(negotiate(Some("text/html")), "application/json");
        assert_eq!(negotiate(Some("text/plain;q=0")), "application/json");
    }

    #[test]
    fn shape_check_catches_differences() {
        let go: Value = serde_json::json!({"a": 1, "b": ["x"], "c": {"d": true}});
        assert!(same_shape(&go.clone(), &go, "$").is_ok());
        for bad in [
            serde_json::json!({"a": 1, "b": ["x"]}),
            serde_json::json!({"a": "1", "b": ["x"], "c": {"d": true}}),
            serde_json::json!({"a": 1, "b": [2], "c": {"d": true}}),
            serde_json::json!({"a": 1, "b": ["x"], "c": {"d": true, "e": 1}}),
            serde_json::json!({"a": -1, "b": ["x"], "c": {"d": true}}),
        ] {
            assert!(same_shape(&bad, &go, "$").is_err(), "{bad}");
        }
    }

    #[test]
    fn peer_and_topic_json_have_the_go_shapes() {
        let id = PeerId::random();
        let info = PeerInfo {
            id,
            connections: vec![
                PeerConnection {
                    address: "/ip4/10.0.0.2/tcp/13001".parse().expect("addr"),
                    outbound: true,
                },
                PeerConnection {
                    address: "/ip4/10.0.0.2/tcp/40000".parse().expect("addr"),
                    outbound: false,
                },
            ],
            verified: true,
            subnets: Some("00000000000000000000000000000010".into()),
            version: Some("v2.3.7".into()),
        };
        let ours = serde_json::to_value(vec![PeerJson::from(&info)]).expect("json");
        same_shape(&ours, &example("peers"), "$").expect("peers shape");
        assert_eq!(ours[0]["connections"][1]["direction"], "Inbound");
        assert_eq!(ours[0]["id"], id.to_string());
        // Unknown metadata: all-zero subnets and an empty version, as Go.
        let bare = PeerJson::from(&PeerInfo {
            subnets: None,
            version: None,
            ..info
        });
        assert_eq!(bare.subnets, "0".repeat(32));
        assert_eq!(bare.version, "");
        let topics = serde_json::to_value(PeersAndTopicsJson {
            all_peers: vec![id.to_string()],
            peers_by_topic: vec![TopicJson {
                topic: "ssv.v2.4".into(),
                peers: vec![id.to_string()],
            }],
        })
        .expect("json");
        same_shape(&topics, &example("topics"), "$").expect("topics shape");
    }

    fn share(i: u8, ops: Vec<u64>, owner: u8) -> ShareRecord {
        ShareRecord {
            validator_pubkey: [i; 48],
            validator_index: Some(u64::from(i)),
            committee_id: committee_id(&ops).expect("committee"),
            share_pubkeys: ops.iter().map(|_| [i; 48]).collect(),
            operator_ids: ops,
            encrypted_share: vec![1, 2, 3],
            secret_share: None,
            owner: [owner; 20],
            liquidated: false,
        }
    }

    /// Sends `GET path` and returns the status, the version header and the body.
    async fn get(addr: SocketAddr, path: &str) -> (u16, Option<String>, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        let text = String::from_utf8(raw).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let status = head[9..12].parse().expect("status");
        let version = head
            .lines()
            .find_map(|l| l.strip_prefix("x-ssv-node-version: "))
            .map(str::to_owned);
        // Small answers come with a Content-Length; none of these is chunked.
        assert!(!head.to_ascii_lowercase().contains("chunked"), "{head}");
        (status, version, body.to_owned())
    }

    /// `GET path` with an `Accept` header: status and body (checked to be `text/plain`).
    async fn get_accept(addr: SocketAddr, path: &str, accept: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        let text = String::from_utf8(raw).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.contains("content-type: text/plain"), "{head}");
        (head[9..12].parse().expect("status"), body.to_owned())
    }

    fn json(body: &str) -> Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routes_answer_with_the_go_shapes_and_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Arc::new(Store::open(StoreConfig::new(dir.path().join("db"), [0; 32])).expect("store"));
        store
            .write(vec![
                WriteOp::PutShare(share(1, vec![1, 2, 3, 4], 7)),
                WriteOp::PutShare(share(2, vec![1, 2, 3, 4], 8)),
                WriteOp::PutShare(share(3, vec![5, 6, 7, 8], 7)),
                WriteOp::PutMetadata(ValidatorMetadata {
                    pubkey: [1; 48],
                    index: 1,
                    status: ValidatorStatus::Active,
                    activation_epoch: 3,
                    fee_recipient: [0; 20],
                }),
                WriteOp::SetSyncCursor(5),
            ])
            .expect("write");
        let (network, far_end) = NetworkHandle::detached(64);
        // The detached far end answers queries (as a network with no peers) when drained.
        let drainer = tokio::spawn(async move {
            loop {
                far_end.drain();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        // Nothing listens on port 9: the beacon node was never probed healthy, the execution
        // node is unreachable.
        let beacon =
            Arc::new(BeaconClient::new(vec!["http://127.0.0.1:9".into()]).expect("client"));
        let health = Arc::new(HealthSources::new(
            beacon,
            network.clone(),
            store.clone(),
            Some(Eth1Probe {
                endpoints: vec!["http://127.0.0.1:9".into()],
                follow_distance: 0,
            }),
            PeerFloor::GO,
            vec![
                "tcp://127.0.0.1:13001".into(),
                "udp://127.0.0.1:12001".into(),
            ],
        ));
        let state = Arc::new(ApiState::new(
            network,
            store,
            health,
            "ssv-node-rs/test".into(),
        ));
        let addr = serve("127.0.0.1:0".parse().expect("addr"), router(state))
            .await
            .expect("serve");

        let (code, version, body) = get(addr, "/v1/node/identity").await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(version.as_deref(), Some("ssv-node-rs/test"));
        same_shape(&json(&body), &example("identity"), "$").expect("identity shape");

        let (code, _, body) = get(addr, "/v1/node/peers").await;
        assert_eq!((code, json(&body)), (200, serde_json::json!([])));
        let (code, _, body) = get(addr, "/v1/node/topics").await;
        assert_eq!(code, 200);
        same_shape(&json(&body), &example("topics"), "$").expect("topics shape");

        let (code, _, body) = get(addr, "/v1/node/health").await;
        assert_eq!(code, 200, "the Go node answers 200 whatever the verdict");
        let h = json(&body);
        same_shape(&h, &example("health"), "$").expect("health shape");
        assert_eq!(h["p2p"], "bad: no peers are connected");
        assert!(
            h["beacon_node"].as_str().expect("str").starts_with("bad: "),
            "{h}"
        );
        assert!(
            h["execution_node"]
                .as_str()
                .expect("str")
                .starts_with("bad: "),
            "{h}"
        );
        assert!(
            h["event_syncer"]
                .as_str()
                .expect("str")
                .starts_with("bad: "),
            "{h}"
        );
        let (code, text) = get_accept(addr, "/v1/node/health", "*/*").await;
        assert_eq!(code, 200);
        assert!(
            text.starts_with("{\n  \"p2p\": "),
            "indented JSON as text: {text}"
        );
        assert_eq!(json(&text), h);
        let (code, _, body) = get(addr, "/health").await;
        assert_eq!(code, 500);
        let errs = json(&body);
        same_shape(&errs, &example("health_errors"), "$").expect("errors shape");
        assert_eq!(errs["errors"].as_array().expect("array").len(), 4, "{errs}");

        let (code, _, body) = get(addr, "/v1/validators").await;
        assert_eq!(code, 200, "{body}");
        let all = json(&body);
        same_shape(&all, &example("validators"), "$").expect("validators shape");
        let data = all["data"].as_array().expect("data");
        assert_eq!(data.len(), 3);
        assert_eq!(data[0]["public_key"], "01".repeat(48));
        assert_eq!(data[0]["status"], "active_ongoing");
        assert_eq!(data[0]["exit_epoch"], u64::MAX);
        assert_eq!(data[1]["status"], "", "no metadata: Go's empty status");
        assert_eq!(data[2]["committee"], serde_json::json!([5, 6, 7, 8]));

        let keys = |body: &str| -> Vec<String> {
            json(body)["data"]
                .as_array()
                .expect("data")
                .iter()
                .map(|v| v["public_key"].as_str().expect("key")[..2].to_owned())
                .collect()
        };
        for (query, want) in [
            ("operators=5", vec!["03"]),
            ("clusters=1,2,3,4", vec!["01", "02"]),
            ("subclusters=6,7", vec!["03"]),
            ("indices=2,3", vec!["02", "03"]),
            (&*format!("owners=0x{}", "07".repeat(20)), vec!["01", "03"]),
            (
                &*format!("owners={}&indices=3", "07".repeat(20)),
                vec!["03"],
            ),
            (&*format!("pubkeys={}", "02".repeat(48)), vec!["02"]),
            ("indices=99", vec![]),
        ] {
            let (code, _, body) = get(addr, &format!("/v1/validators?{query}")).await;
            assert_eq!(code, 200, "{query}: {body}");
            assert_eq!(keys(&body), want, "{query}");
        }
        for bad in [
            "operators=x",
            "indices=1,-2",
            "owners=0xzz",
            "clusters=1,,2",
        ] {
            let (code, version, body) = get(addr, &format!("/v1/validators?{bad}")).await;
            assert_eq!(code, 400, "{bad}: {body}");
            assert!(version.is_some());
            let e = json(&body);
            same_shape(&e, &example("error"), "$").expect("error shape");
            assert_eq!(e["status"], "Bad Request");
        }

        // With the network thread gone, network routes fail as Go's `api.Error` (500).
        drainer.abort();
        let _ = drainer.await;
        let (code, _, body) = get(addr, "/v1/node/peers").await;
        assert_eq!(code, 500, "{body}");
        let e = json(&body);
        same_shape(&e, &example("error"), "$").expect("error shape");
        assert_eq!(e["status"], "Internal Server Error");
    }
}
