//! The client against a hostile beacon node on loopback: an endless response body is cut at
//! [`RESPONSE_BYTES_MAX`] and a hanging one at the request timeout; both fail over (here:
//! fail, as there is one node) with an error instead of exhausting memory or hanging.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::get;
use ssv_beacon_api::client::{ATTEMPTS_MAX, REQUEST_TIMEOUT, RESPONSE_BYTES_MAX};
use ssv_beacon_api::{BeaconClient, BeaconError};

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_at_the_cap() {
    let app = Router::new().route(
        "/eth/v1/beacon/genesis",
        get(|| async {
            let chunk = Bytes::from(vec![b' '; 1 << 20]);
            Body::from_stream(futures::stream::repeat_with(move || {
                Ok::<_, Infallible>(chunk.clone())
            }))
        }),
    );
    let addr = serve(app).await;
    let client = BeaconClient::new(vec![format!("http://{addr}")]).expect("client");
    let started = Instant::now();
    let err = client
        .genesis()
        .await
        .expect_err("an endless body is refused");
    match &err {
        BeaconError::Unavailable { last, .. } => {
            assert!(
                last.contains(&RESPONSE_BYTES_MAX.to_string()) || last.contains("timed out"),
                "{err}"
            );
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(started.elapsed() < REQUEST_TIMEOUT * (ATTEMPTS_MAX as u32 + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_huge_body_is_refused_before_reading() {
    let app = Router::new().route(
        "/eth/v1/beacon/genesis",
        get(|| async {
            axum::http::Response::builder()
                .header("content-length", (8u64 << 30).to_string())
                .body(Body::from_stream(futures::stream::pending::<
                    Result<Bytes, Infallible>,
                >()))
                .expect("response")
        }),
    );
    let addr = serve(app).await;
    let client = BeaconClient::new(vec![format!("http://{addr}")]).expect("client");
    let started = Instant::now();
    let err = client.genesis().await.expect_err("refused");
    assert!(err.to_string().contains("more than"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "read before refusing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_node_times_out() {
    let app = Router::new().route(
        "/eth/v1/beacon/genesis",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        }),
    );
    let addr = serve(app).await;
    let client = BeaconClient::new(vec![format!("http://{addr}")]).expect("client");
    let started = Instant::now();
    assert!(client.genesis().await.is_err());
    let took = started.elapsed();
    assert!(took >= REQUEST_TIMEOUT, "{took:?}");
    assert!(
        took < REQUEST_TIMEOUT * (ATTEMPTS_MAX as u32 + 1),
        "{took:?}"
    );
}
