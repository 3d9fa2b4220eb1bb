//! A node hosting two operator IDs with contract sync: the event handler (with both keys)
//! fills an MDBX store through `MdbxRegistryStore`, and the runtime's start-up loader
//! (`resolve_operators`, `Registry::load`) finds both IDs and runs the shared committee
//! once per ID, each with the share decrypted from that ID's own encrypted share.

use std::path::PathBuf;
use std::sync::Arc;

use alloy::primitives::{B256, Bytes, U256};
use alloy::sol_types::SolValue;
use ssv_crypto_pipeline::{OperatorSecretKey, SecretKey};
use ssv_eth_sync::abi;
use ssv_eth_sync::events::{ContractEvent, EventMeta, LogEvent};
use ssv_eth_sync::shares::{share_plaintext, sign_owner_nonce};
use ssv_eth_sync::{Address, EventHandler, MdbxRegistryStore, RegistryState, RegistryStore};
use ssv_node::Registry;
use ssv_protocol::types::DomainType;
use ssv_storage::{Durability, Store, StoreConfig, WriteOp};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ev(block: u64, event: ContractEvent) -> LogEvent {
    LogEvent {
        meta: EventMeta {
            block,
            log_index: 0,
            tx_hash: B256::ZERO,
        },
        name: event.name(),
        event: Ok(event),
    }
}

fn operator(id: u64, published: &[u8]) -> ContractEvent {
    ContractEvent::OperatorAdded(abi::OperatorAdded {
        operatorId: id,
        owner: Address::repeat_byte(9),
        publicKey: Bytes::from(published.to_vec()).abi_encode().into(),
        fee: U256::ZERO,
    })
}

#[test]
fn two_hosted_operators_load_their_own_shares_from_a_synced_store() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = TempDir(
        std::env::temp_dir().join(format!("ssv-several-ops-{}-{nanos}", std::process::id())),
    );
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let mut c = StoreConfig::new(&dir.0, [0x11; 32]);
    c.durability = Durability::NoSyncSafe;
    c.geometry.max_size_bytes = 64 << 20;
    let store = Arc::new(Store::open(c).expect("open store"));
    let registry = MdbxRegistryStore::new(store.clone()).expect("registry");

    let a = Arc::new(OperatorSecretKey::generate().expect("rsa"));
    let b = Arc::new(OperatorSecretKey::generate().expect("rsa"));
    let handler = EventHandler::with_keys(vec![a.clone(), b.clone()]);
    let mut state = RegistryState::default();

    // Committee 4, 3, 2, 1 (event order): ours are 1 (key a) and 3 (key b).
    let owner = Address::repeat_byte(4);
    let ids = [4u64, 3, 2, 1];
    let validator = SecretKey::from_ikm(&[77; 32]);
    let share_keys: Vec<SecretKey> = ids
        .iter()
        .map(|id| SecretKey::from_ikm(&[*id as u8 + 100; 32]))
        .collect();
    let mut shares = sign_owner_nonce(&validator, owner, 0).to_vec();
    for s in &share_keys {
        shares.extend_from_slice(&s.public_key().to_bytes());
    }
    for (id, s) in ids.iter().zip(&share_keys) {
        let key = match id {
            1 => &a,
            3 => &b,
            _ => {
                shares.extend_from_slice(&[*id as u8; 256]);
                continue;
            }
        };
        let enc = key
            .public_key()
            .encrypt(share_plaintext(s).as_bytes())
            .expect("encrypt");
        shares.extend_from_slice(&enc);
    }
    let added = ContractEvent::ValidatorAdded(abi::ValidatorAdded {
        owner,
        operatorIds: ids.to_vec(),
        publicKey: validator.public_key().to_bytes().to_vec().into(),
        shares: shares.into(),
        cluster: abi::Cluster {
            validatorCount: 1,
            networkFeeIndex: 0,
            index: 0,
            active: true,
            balance: U256::ZERO,
        },
    });
    let blocks = [
        vec![
            ev(1, operator(1, a.public_key().to_base64_pem().as_bytes())),
            ev(1, operator(2, b"fake2")),
            ev(1, operator(3, b.public_key().to_base64_pem().as_bytes())),
            ev(1, operator(4, b"fake4")),
        ],
        vec![ev(2, added)],
    ];
    for (i, events) in blocks.iter().enumerate() {
        let out = handler.handle_block(&mut state, events);
        assert_eq!(out.malformed, 0, "{:?}", state.malformed_recent);
        registry
            .apply_block(i as u64 + 1, &out.changes)
            .expect("apply");
    }
    let pubkey = validator.public_key().to_bytes();
    store
        .write(vec![WriteOp::SetValidatorIndex(pubkey, 7)])
        .expect("index");

    let ours = ssv_node::resolve_operators(&store, &[(None, a.clone()), (None, b.clone())])
        .expect("both operators resolve");
    let loaded = Registry::load(&store, &ours, DomainType::MAINNET).expect("runtime load");
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    let mut runs: Vec<(u64, [u8; 48])> = loaded
        .committees
        .iter()
        .map(|c| {
            let share = c.validators.get(&7).expect("the validator runs");
            (
                c.member.operator_id,
                share.secret_share.public_key().to_bytes(),
            )
        })
        .collect();
    runs.sort_unstable();
    let expected = |id: u64| {
        let pos = ids.iter().position(|i| *i == id).expect("in committee");
        share_keys[pos].public_key().to_bytes()
    };
    assert_eq!(runs, vec![(1, expected(1)), (3, expected(3))]);
}
