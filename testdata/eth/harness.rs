//! Test harness of the contract-sync integration tests: a hardhat dev node on 127.0.0.1
//! (started per test, killed on drop), the `SSVNetworkEvents` test contract (bytecode
//! checked in next to its Solidity source, re-checked by `setup.sh`), and generators of
//! valid and deliberately broken `ValidatorAdded` payloads.
//!
//! Shared by the contract-sync tests of `ssv-eth-sync` and the devnet tests of `ssv-node`
//! (each includes this file with `#[path]`). A test fails, saying what is missing, when
//! `testdata/eth/node_modules` is absent: run `testdata/eth/setup.sh` (CI's `.ci/run` does).

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, TxKind};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::{SolCall, SolValue};
use ssv_crypto_pipeline::{OperatorSecretKey, SecretKey};
use ssv_eth_sync::shares::{share_plaintext, sign_owner_nonce};

/// How long the dev node may take to answer its first request.
pub const NODE_START_TIMEOUT: Duration = Duration::from_secs(90);
/// Gas limit of every test transaction (under the 2^24 per-transaction cap of EIP-7825,
/// which hardhat 2.29 enforces).
pub const TX_GAS: u64 = 16_000_000;
/// A committee with our operator (ID 1).
pub const OURS_4: [u64; 4] = [1, 2, 3, 4];
/// A committee without us.
pub const THEIRS_4: [u64; 4] = [2, 3, 4, 5];

alloy::sol! {
    struct Cluster {
        uint32 validatorCount;
        uint64 networkFeeIndex;
        uint64 index;
        bool active;
        uint256 balance;
    }
    function registerOperator(uint64 operatorId, bytes publicKey, uint256 fee);
    function removeOperator(uint64 operatorId);
    function registerValidator(uint64[] operatorIds, bytes publicKey, bytes shares);
    function bulkRegisterValidator(uint64[] operatorIds, bytes[] publicKeys, bytes[] shares);
    function removeValidator(uint64[] operatorIds, bytes publicKey);
    function exitValidator(uint64[] operatorIds, bytes publicKey);
    function liquidate(address clusterOwner, uint64[] operatorIds);
    function reactivate(uint64[] operatorIds);
    function setFeeRecipientAddress(address recipientAddress);
}

/// The workspace root (every crate that includes this harness is one level below it).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `testdata/eth`: the dev node's npm package and its set-up script.
pub fn eth_dir() -> PathBuf {
    workspace_dir().join("testdata").join("eth")
}

/// The test contract's checked-in creation bytecode (data of the devnet crate).
pub fn contract_bin() -> PathBuf {
    workspace_dir()
        .join("devnet")
        .join("contract")
        .join("SSVNetworkEvents.bin")
}

fn hardhat_bin() -> PathBuf {
    eth_dir().join("node_modules").join(".bin").join("hardhat")
}

/// Whether `setup.sh` has installed the dev node.
pub fn dev_node_installed() -> bool {
    hardhat_bin().exists()
}

/// Fails the test, saying what is missing, when the dev node is not installed.
#[macro_export]
macro_rules! require_dev_node {
    () => {
        assert!(
            $crate::harness::dev_node_installed(),
            "testdata/eth/node_modules is absent: run testdata/eth/setup.sh (Node.js 20 and \
             npm) to install hardhat, which this contract-sync integration test needs"
        );
    };
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A hardhat dev node on 127.0.0.1, killed on drop.
pub struct DevNode {
    child: Child,
    port: u16,
}

impl DevNode {
    /// Starts `hardhat node` on a free port and waits until its RPC answers.
    pub async fn start() -> DevNode {
        let port = free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("hardhat-{port}.log")))
            .expect("hardhat log file");
        let child = Command::new(hardhat_bin())
            .args([
                "node",
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .current_dir(eth_dir())
            .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn hardhat node");
        let node = DevNode { child, port };
        let started = Instant::now();
        loop {
            if let Ok(p) = ProviderBuilder::new()
                .disable_recommended_fillers()
                .connect(&node.http_url())
                .await
                && p.get_block_number().await.is_ok()
            {
                return node;
            }
            assert!(
                started.elapsed() < NODE_START_TIMEOUT,
                "hardhat node did not answer on port {port} within {NODE_START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `ws://127.0.0.1:<port>` (hardhat serves WebSocket on the same port).
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An http URL on which nothing listens (a dead endpoint for failover tests).
pub fn dead_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// The deployed test contract and the dev node's unlocked accounts.
pub struct Chain {
    pub provider: DynProvider,
    pub contract: Address,
    pub accounts: Vec<Address>,
    pub deploy_block: u64,
}

impl Chain {
    /// Deploys `SSVNetworkEvents` from the first account.
    pub async fn deploy(node: &DevNode) -> Chain {
        let provider = ProviderBuilder::new()
            .connect(&node.http_url())
            .await
            .expect("connect")
            .erased();
        let accounts = provider.get_accounts().await.expect("eth_accounts");
        let hex_code = std::fs::read_to_string(contract_bin()).expect("checked-in bytecode");
        let code: Bytes = hex_code.trim().parse().expect("bytecode hex");
        let tx = TransactionRequest::default()
            .from(accounts[0])
            .with_deploy_code(code)
            .gas_limit(5_000_000);
        let receipt = provider
            .send_transaction(tx)
            .await
            .expect("deploy")
            .get_receipt()
            .await
            .expect("deploy receipt");
        assert!(receipt.status(), "deployment reverted");
        Chain {
            contract: receipt.contract_address.expect("contract address"),
            deploy_block: receipt.block_number.expect("deploy block"),
            provider,
            accounts,
        }
    }

    /// Sends a call from `from` and waits for it to be mined; returns its block.
    pub async fn send<C: SolCall>(&self, from: Address, call: C) -> u64 {
        let tx = TransactionRequest {
            to: Some(TxKind::Call(self.contract)),
            ..Default::default()
        }
        .from(from)
        .input(call.abi_encode().into())
        .gas_limit(TX_GAS);
        let receipt = self
            .provider
            .send_transaction(tx)
            .await
            .expect("send")
            .get_receipt()
            .await
            .expect("receipt");
        assert!(receipt.status(), "transaction reverted");
        receipt.block_number.expect("block number")
    }

    /// The head block.
    pub async fn head(&self) -> u64 {
        self.provider.get_block_number().await.expect("head")
    }

    /// Mines `n` empty blocks.
    pub async fn mine(&self, n: u64) {
        for _ in 0..n {
            let _: String = self
                .provider
                .raw_request("evm_mine".into(), Vec::<u64>::new())
                .await
                .expect("evm_mine");
        }
    }
}

/// The `publicKey` bytes of `OperatorAdded` for an RSA key: `abi.encode(bytes(base64(PEM)))`.
pub fn operator_key_field(key: &OperatorSecretKey) -> Bytes {
    Bytes::from(key.public_key().to_base64_pem().into_bytes())
        .abi_encode()
        .into()
}

/// The `publicKey` field of an operator whose key we never need (unique per ID).
pub fn fake_operator_key_field(id: u64) -> Bytes {
    Bytes::from(format!("LS0tLS1GQUtFIE9QRVJBVE9SIEtFWSB7{id}fQ==").into_bytes())
        .abi_encode()
        .into()
}

/// How a generated `ValidatorAdded` payload is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shares {
    /// Valid.
    Valid,
    /// One byte short.
    BadLength,
    /// Our encrypted share replaced by bytes that do not decrypt.
    BadEncryption,
    /// Our share encrypts a key that does not match our share public key.
    WrongShareKey,
    /// Signed with the wrong nonce.
    BadSignature,
}

/// A generated validator registration.
#[derive(Debug, Clone)]
pub struct Registration {
    pub owner: Address,
    pub operator_ids: Vec<u64>,
    pub public_key: Bytes,
    pub shares: Bytes,
    pub validator_secret: SecretKey,
}

/// Builds `ValidatorAdded` payloads, keeping each owner's nonce as the node counts it.
pub struct Registrar {
    pub our_id: u64,
    pub our_key: Arc<OperatorSecretKey>,
    nonces: std::collections::HashMap<Address, u64>,
    counter: u64,
    seed: u8,
}

impl Registrar {
    pub fn new(our_id: u64, our_key: Arc<OperatorSecretKey>, seed: u8) -> Self {
        Self {
            our_id,
            our_key,
            nonces: Default::default(),
            counter: 0,
            seed,
        }
    }

    fn key(&mut self, tag: u8) -> SecretKey {
        self.counter += 1;
        let mut ikm = [0u8; 32];
        ikm[..8].copy_from_slice(&self.counter.to_le_bytes());
        ikm[8] = tag;
        ikm[9] = self.seed;
        SecretKey::from_ikm(&ikm)
    }

    /// A registration of a new validator by `owner` with `operator_ids`.
    pub fn register(&mut self, owner: Address, operator_ids: &[u64], how: Shares) -> Registration {
        let nonce = *self
            .nonces
            .entry(owner)
            .and_modify(|n| *n += 1)
            .or_insert(0);
        let validator = self.key(1);
        let signed_nonce = if how == Shares::BadSignature {
            nonce + 1
        } else {
            nonce
        };
        let mut shares = sign_owner_nonce(&validator, owner, signed_nonce).to_vec();
        let mut encrypted = Vec::new();
        for id in operator_ids {
            let share = self.key(2);
            shares.extend_from_slice(&share.public_key().to_bytes());
            if *id == self.our_id {
                let plaintext = match how {
                    Shares::WrongShareKey => share_plaintext(&self.key(3)),
                    _ => share_plaintext(&share),
                };
                let mut enc = self
                    .our_key
                    .public_key()
                    .encrypt(plaintext.as_bytes())
                    .expect("rsa encrypt");
                if how == Shares::BadEncryption {
                    enc = (0..256u32).map(|i| (i * 7 + 3) as u8).collect();
                }
                encrypted.extend_from_slice(&enc);
            } else {
                encrypted.extend((0..256u32).map(|i| (i as u8) ^ (*id as u8)));
            }
        }
        shares.extend_from_slice(&encrypted);
        if how == Shares::BadLength {
            shares.pop();
        }
        Registration {
            owner,
            operator_ids: operator_ids.to_vec(),
            public_key: validator.public_key().to_bytes().to_vec().into(),
            shares: shares.into(),
            validator_secret: validator,
        }
    }
}

/// Registers our operator (with `our_key`) and `others` fake operators; returns the IDs
/// (ours first) and the last block.
pub async fn register_operators(
    chain: &Chain,
    our_id: u64,
    our_key: &OperatorSecretKey,
    others: &[u64],
) -> u64 {
    let owner = chain.accounts[9];
    let mut block = chain
        .send(
            owner,
            registerOperatorCall {
                operatorId: our_id,
                publicKey: operator_key_field(our_key),
                fee: Default::default(),
            },
        )
        .await;
    for id in others {
        block = chain
            .send(
                owner,
                registerOperatorCall {
                    operatorId: *id,
                    publicKey: fake_operator_key_field(*id),
                    fee: Default::default(),
                },
            )
            .await;
    }
    block
}

/// Sends registrations in bulk transactions of `per_tx` (all of one owner and operator set
/// per transaction); returns the last block.
pub async fn send_registrations(chain: &Chain, regs: &[Registration], per_tx: usize) -> u64 {
    let mut block = 0;
    let mut i = 0;
    while i < regs.len() {
        let first = &regs[i];
        let mut j = i;
        while j < regs.len()
            && j - i < per_tx
            && regs[j].owner == first.owner
            && regs[j].operator_ids == first.operator_ids
        {
            j += 1;
        }
        let batch = &regs[i..j];
        block = if batch.len() == 1 {
            chain
                .send(
                    first.owner,
                    registerValidatorCall {
                        operatorIds: first.operator_ids.clone(),
                        publicKey: first.public_key.clone(),
                        shares: first.shares.clone(),
                    },
                )
                .await
        } else {
            chain
                .send(
                    first.owner,
                    bulkRegisterValidatorCall {
                        operatorIds: first.operator_ids.clone(),
                        publicKeys: batch.iter().map(|r| r.public_key.clone()).collect(),
                        shares: batch.iter().map(|r| r.shares.clone()).collect(),
                    },
                )
                .await
        };
        i = j;
    }
    block
}

/// A JSON-RPC proxy on 127.0.0.1 in front of the dev node that refuses `eth_getLogs` over
/// more than `max_range` blocks the way hosted providers do (error -32005), so the sync's
/// range halving is exercised against real responses. HTTP/1.1 with `Content-Length` only.
pub async fn range_limiting_proxy(
    upstream: String,
    max_range: u64,
) -> (String, Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
    let http = alloy::transports::http::reqwest::Client::new();
    let refused = Arc::new(AtomicU64::new(0));
    let refused_out = refused.clone();

    async fn read_message(
        s: &mut tokio::net::TcpStream,
        buf: &mut Vec<u8>,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = buf[..end + 4].to_vec();
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let len: usize = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while buf.len() < end + 4 + len {
                    let mut chunk = [0u8; 65536];
                    let n = s.read(&mut chunk).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Some((head, body));
            }
            let mut chunk = [0u8; 65536];
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn hex_field(body: &str, key: &str) -> Option<u64> {
        let at = body.find(&format!("\"{key}\":\"0x"))? + key.len() + 6;
        let end = at + body[at..].find('"')?;
        u64::from_str_radix(&body[at..end], 16).ok()
    }

    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let (http, upstream) = (http.clone(), upstream.clone());
            let refused = refused.clone();
            tokio::spawn(async move {
                let mut cbuf = Vec::new();
                while let Some((head, body)) = read_message(&mut client, &mut cbuf).await {
                    let text = String::from_utf8_lossy(&body).to_string();
                    let too_wide = text.contains("\"eth_getLogs\"")
                        && matches!(
                            (hex_field(&text, "fromBlock"), hex_field(&text, "toBlock")),
                            (Some(f), Some(t)) if t.saturating_sub(f) + 1 > max_range
                        );
                    if too_wide {
                        refused.fetch_add(1, Ordering::Relaxed);
                        let id = text
                            .find("\"id\":")
                            .map(|i| {
                                text[i + 5..]
                                    .chars()
                                    .take_while(|c| c.is_ascii_digit())
                                    .collect::<String>()
                            })
                            .unwrap_or_else(|| "0".into());
                        let reply = format!(
                            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{{\"code\":-32005,\"message\":\"block range too large, max {max_range}\"}}}}"
                        );
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                            reply.len()
                        );
                        if client.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    let _ = head;
                    let Ok(reply) = http
                        .post(&upstream)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                    else {
                        return;
                    };
                    let Ok(reply) = reply.bytes().await else {
                        return;
                    };
                    let resp_head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        reply.len()
                    );
                    if client.write_all(resp_head.as_bytes()).await.is_err()
                        || client.write_all(&reply).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, refused_out)
}

/// `events` valid registrations by accounts `1..=owners` of `chain` (owner `o` gets
/// `events / owners`), even owners in a committee with us, odd ones not; generated on one
/// thread per owner (each needs its own nonce sequence).
pub fn parallel_registrations(
    chain: &Chain,
    our_id: u64,
    key: &Arc<OperatorSecretKey>,
    events: usize,
    owners: usize,
) -> Vec<Vec<Registration>> {
    let per_owner = events / owners;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..owners)
            .map(|o| {
                let owner = chain.accounts[1 + o];
                let key = key.clone();
                s.spawn(move || {
                    let mut reg = Registrar::new(our_id, key, 10 + o as u8);
                    let ids = if o % 2 == 0 { &OURS_4 } else { &THEIRS_4 };
                    (0..per_owner)
                        .map(|_| reg.register(owner, ids, Shares::Valid))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("generator"))
            .collect()
    })
}
