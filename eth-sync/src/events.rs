//! Decoding of raw logs into typed contract events.
//!
//! Every log the endpoint returns becomes a [`LogEvent`]: its position ([`EventMeta`]) and
//! either the decoded [`ContractEvent`] or the reason it does not decode. Undecodable logs
//! are not dropped here: the handler records them as malformed, so they are visible in the
//! store and the logs, and the sync never stops on them.

use alloy::primitives::{Address, B256, Log as PrimitiveLog, LogData};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEvent;

use super::abi;
use super::error::EventRejection;

/// Longest log data accepted, in bytes. The largest real event (`ValidatorAdded` with 13
/// operators) is about 4.6 KB of ABI data; anything far above is hostile or broken and is
/// rejected before ABI decoding allocates for it.
pub const LOG_DATA_MAX: usize = 64 * 1024;

/// Most operators an event may name (the largest committee, 13 = 3·4 + 1).
pub const EVENT_OPERATORS_MAX: usize = 13;

/// Where a log sits in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventMeta {
    /// Block number.
    pub block: u64,
    /// Index of the log in its block.
    pub log_index: u64,
    /// Hash of the transaction that emitted it.
    pub tx_hash: B256,
}

/// One of the SSVNetwork events the node acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractEvent {
    /// `OperatorAdded`.
    OperatorAdded(abi::OperatorAdded),
    /// `OperatorRemoved`.
    OperatorRemoved(abi::OperatorRemoved),
    /// `ValidatorAdded`.
    ValidatorAdded(abi::ValidatorAdded),
    /// `ValidatorRemoved`.
    ValidatorRemoved(abi::ValidatorRemoved),
    /// `ValidatorExited`.
    ValidatorExited(abi::ValidatorExited),
    /// `ClusterLiquidated`.
    ClusterLiquidated(abi::ClusterLiquidated),
    /// `ClusterReactivated`.
    ClusterReactivated(abi::ClusterReactivated),
    /// `FeeRecipientAddressUpdated`.
    FeeRecipientAddressUpdated(abi::FeeRecipientAddressUpdated),
}

impl ContractEvent {
    /// The event's name as in the contract ABI.
    pub fn name(&self) -> &'static str {
        match self {
            ContractEvent::OperatorAdded(_) => "OperatorAdded",
            ContractEvent::OperatorRemoved(_) => "OperatorRemoved",
            ContractEvent::ValidatorAdded(_) => "ValidatorAdded",
            ContractEvent::ValidatorRemoved(_) => "ValidatorRemoved",
            ContractEvent::ValidatorExited(_) => "ValidatorExited",
            ContractEvent::ClusterLiquidated(_) => "ClusterLiquidated",
            ContractEvent::ClusterReactivated(_) => "ClusterReactivated",
            ContractEvent::FeeRecipientAddressUpdated(_) => "FeeRecipientAddressUpdated",
        }
    }
}

/// A log at its position, decoded or not.
#[derive(Debug, Clone)]
pub struct LogEvent {
    /// Position in the chain.
    pub meta: EventMeta,
    /// Name of the event its topic 0 names ("unknown" when it names none of ours).
    pub name: &'static str,
    /// The decoded event, or why it does not decode.
    pub event: Result<ContractEvent, EventRejection>,
}

fn decode_as<E: SolEvent>(data: &LogData) -> Result<E, EventRejection> {
    E::decode_log_data_validate(data).map_err(|e| EventRejection::Undecodable(e.to_string()))
}

fn check_operator_count(ids: &[u64]) -> Result<(), EventRejection> {
    if ids.len() > EVENT_OPERATORS_MAX {
        return Err(EventRejection::InvalidOperators(format!(
            "{} operators, at most {EVENT_OPERATORS_MAX}",
            ids.len()
        )));
    }
    Ok(())
}

/// Decodes the data of one log (topics and ABI data). Returns the event name for logging
/// and the decoded event or its rejection.
pub fn decode_log_data(data: &LogData) -> (&'static str, Result<ContractEvent, EventRejection>) {
    let Some(topic0) = data.topics().first().copied() else {
        return (
            "unknown",
            Err(EventRejection::Undecodable("log without topics".into())),
        );
    };
    let name = event_name(&topic0);
    if data.data.len() > LOG_DATA_MAX {
        return (
            name,
            Err(EventRejection::Undecodable(format!(
                "{} bytes of log data, at most {LOG_DATA_MAX}",
                data.data.len()
            ))),
        );
    }
    let event = match topic0 {
        t if t == abi::OperatorAdded::SIGNATURE_HASH => {
            decode_as(data).map(ContractEvent::OperatorAdded)
        }
        t if t == abi::OperatorRemoved::SIGNATURE_HASH => {
            decode_as(data).map(ContractEvent::OperatorRemoved)
        }
        t if t == abi::ValidatorAdded::SIGNATURE_HASH => decode_as::<abi::ValidatorAdded>(data)
            .and_then(|e| {
                check_operator_count(&e.operatorIds)?;
                Ok(ContractEvent::ValidatorAdded(e))
            }),
        t if t == abi::ValidatorRemoved::SIGNATURE_HASH => decode_as::<abi::ValidatorRemoved>(data)
            .and_then(|e| {
                check_operator_count(&e.operatorIds)?;
                Ok(ContractEvent::ValidatorRemoved(e))
            }),
        t if t == abi::ValidatorExited::SIGNATURE_HASH => decode_as::<abi::ValidatorExited>(data)
            .and_then(|e| {
                check_operator_count(&e.operatorIds)?;
                Ok(ContractEvent::ValidatorExited(e))
            }),
        t if t == abi::ClusterLiquidated::SIGNATURE_HASH => {
            decode_as::<abi::ClusterLiquidated>(data).and_then(|e| {
                check_operator_count(&e.operatorIds)?;
                Ok(ContractEvent::ClusterLiquidated(e))
            })
        }
        t if t == abi::ClusterReactivated::SIGNATURE_HASH => {
            decode_as::<abi::ClusterReactivated>(data).and_then(|e| {
                check_operator_count(&e.operatorIds)?;
                Ok(ContractEvent::ClusterReactivated(e))
            })
        }
        t if t == abi::FeeRecipientAddressUpdated::SIGNATURE_HASH => {
            decode_as(data).map(ContractEvent::FeeRecipientAddressUpdated)
        }
        other => Err(EventRejection::Undecodable(format!(
            "topic {other} is none of the SSVNetwork events"
        ))),
    };
    (name, event)
}

/// The name of the event with this topic 0 ("unknown" for others).
pub fn event_name(topic0: &B256) -> &'static str {
    match *topic0 {
        t if t == abi::OperatorAdded::SIGNATURE_HASH => "OperatorAdded",
        t if t == abi::OperatorRemoved::SIGNATURE_HASH => "OperatorRemoved",
        t if t == abi::ValidatorAdded::SIGNATURE_HASH => "ValidatorAdded",
        t if t == abi::ValidatorRemoved::SIGNATURE_HASH => "ValidatorRemoved",
        t if t == abi::ValidatorExited::SIGNATURE_HASH => "ValidatorExited",
        t if t == abi::ClusterLiquidated::SIGNATURE_HASH => "ClusterLiquidated",
        t if t == abi::ClusterReactivated::SIGNATURE_HASH => "ClusterReactivated",
        t if t == abi::FeeRecipientAddressUpdated::SIGNATURE_HASH => "FeeRecipientAddressUpdated",
        _ => "unknown",
    }
}

/// Why a log from the endpoint cannot be placed in the chain at all (an endpoint fault, not
/// a malformed event: the range is fetched again, from another endpoint if need be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLog(pub String);

/// Turns an RPC log into a [`LogEvent`]. Fails when the log lacks its position, comes from
/// another contract, or lies outside `from..=to`.
pub fn decode_rpc_log(
    log: &Log,
    contract: Address,
    from: u64,
    to: u64,
) -> Result<LogEvent, BadLog> {
    let block = log
        .block_number
        .ok_or_else(|| BadLog("log without block number".into()))?;
    let log_index = log
        .log_index
        .ok_or_else(|| BadLog("log without log index".into()))?;
    let tx_hash = log.transaction_hash.unwrap_or_default();
    if !(from..=to).contains(&block) {
        return Err(BadLog(format!(
            "log of block {block} outside the requested range {from}..={to}"
        )));
    }
    let PrimitiveLog { address, data } = &log.inner;
    if *address != contract {
        return Err(BadLog(format!(
            "log of contract {address}, expected {contract}"
        )));
    }
    let (name, event) = decode_log_data(data);
    Ok(LogEvent {
        meta: EventMeta {
            block,
            log_index,
            tx_hash,
        },
        name,
        event,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use alloy::primitives::{Bytes, U256};

    /// The public-testnet `ValidatorAdded` log of `testdata/validator_added_log.json`.
    pub(crate) fn fixture_log() -> (Address, LogData) {
        let text = include_str!("testdata/validator_added_log.json");
        let v: serde_like::Fixture = serde_like::parse(text);
        (v.address, LogData::new_unchecked(v.topics, v.data))
    }

    /// Minimal field extraction from the fixture (the node has no JSON dependency).
    pub(crate) mod serde_like {
        use alloy::primitives::{Address, B256, Bytes};

        pub(crate) struct Fixture {
            pub(crate) address: Address,
            pub(crate) topics: Vec<B256>,
            pub(crate) data: Bytes,
        }

        fn field<'a>(text: &'a str, key: &str) -> &'a str {
            let start = text
                .find(&format!("\"{key}\""))
                .expect("fixture has the key");
            &text[start + key.len() + 2..]
        }

        fn quoted(s: &str) -> Vec<&str> {
            s.split('"').skip(1).step_by(2).collect()
        }

        pub(crate) fn parse(text: &str) -> Fixture {
            let address = quoted(field(text, "address"))[0].parse().expect("address");
            let topics_part = field(text, "topics");
            let topics_part = &topics_part[..topics_part.find(']').expect("topics end")];
            let topics = quoted(topics_part)
                .into_iter()
                .map(|t| t.parse().expect("topic"))
                .collect();
            let data = quoted(field(text, "data"))[0].parse().expect("data");
            Fixture {
                address,
                topics,
                data,
            }
        }
    }

    #[test]
    fn decodes_a_real_validator_added_log() {
        let (_, data) = fixture_log();
        let (name, event) = decode_log_data(&data);
        assert_eq!(name, "ValidatorAdded");
        let Ok(ContractEvent::ValidatorAdded(e)) = event else {
            panic!("not decoded: {event:?}");
        };
        assert_eq!(
            e.owner,
            "0x77fc6e8b24a623725d935bc88057098d0bca6eb3"
                .parse::<Address>()
                .expect("address")
        );
        assert_eq!(e.operatorIds, vec![1, 2, 3, 4]);
        assert_eq!(
            hex::encode(&e.publicKey),
            "b24454393691331ee6eba4ffa2dbb2600b9859f908c3e648b6c6de9e1dea3e9329866015d08355c8d451427762b913d1"
        );
        assert_eq!(e.shares.len(), 96 + 4 * 304);
        assert_eq!(e.cluster.validatorCount, 3);
        assert!(e.cluster.active);
    }

    #[test]
    fn truncated_and_foreign_logs_are_rejections_not_panics() {
        let (_, data) = fixture_log();
        for cut in [0, 1, 31, 32, 100, data.data.len() / 2, data.data.len() - 1] {
            let short =
                LogData::new_unchecked(data.topics().to_vec(), data.data[..cut].to_vec().into());
            let (name, event) = decode_log_data(&short);
            assert_eq!(name, "ValidatorAdded");
            assert!(
                matches!(event, Err(EventRejection::Undecodable(_))),
                "cut {cut}"
            );
        }
        let foreign = LogData::new_unchecked(vec![B256::repeat_byte(7)], Bytes::new());
        assert_eq!(decode_log_data(&foreign).0, "unknown");
        assert!(decode_log_data(&foreign).1.is_err());
        let none = LogData::new_unchecked(vec![], Bytes::new());
        assert!(decode_log_data(&none).1.is_err());
        let huge =
            LogData::new_unchecked(data.topics().to_vec(), vec![0u8; LOG_DATA_MAX + 1].into());
        assert!(decode_log_data(&huge).1.is_err());
    }

    #[test]
    fn operator_added_round_trips() {
        let e = abi::OperatorAdded {
            operatorId: 7,
            owner: Address::repeat_byte(1),
            publicKey: Bytes::from_static(b"key"),
            fee: U256::from(5u64),
        };
        let data = e.encode_log_data();
        let (name, decoded) = decode_log_data(&data);
        assert_eq!(name, "OperatorAdded");
        assert_eq!(decoded, Ok(ContractEvent::OperatorAdded(e)));
    }

    #[test]
    fn too_many_operators_is_rejected() {
        let e = abi::ClusterLiquidated {
            owner: Address::repeat_byte(1),
            operatorIds: (1..=14).collect(),
            cluster: abi::Cluster {
                validatorCount: 0,
                networkFeeIndex: 0,
                index: 0,
                active: false,
                balance: U256::ZERO,
            },
        };
        let (_, decoded) = decode_log_data(&e.encode_log_data());
        assert!(matches!(decoded, Err(EventRejection::InvalidOperators(_))));
    }
}
