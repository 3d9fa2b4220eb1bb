//! `GET /v1/validators`: every validator share in the store (the whole registry, not only
//! ours, as the Go node's share storage), filtered as the Go handler's request struct says:
//! `owners`, `operators`, `clusters`, `subclusters`, `pubkeys`, `indices`. Each given filter
//! must match (AND); within one, any value may match (OR). Values are comma-separated;
//! `clusters` and `subclusters` are space-separated lists of comma-separated operator IDs.

use std::ops::ControlFlow;

use serde::Serialize;
use ssv_storage::tables::{Metadata, Shares};
use ssv_storage::{Store, ValidatorStatus};

use super::error::ApiError;

/// Most values in one filter parameter. A request is bounded anyway by the URL length
/// hyper accepts; this bounds the matching work per share (values × shares).
pub const FILTER_VALUES_MAX: usize = 1024;

/// The Go handler's request (`form` tags).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ValidatorsRequest {
    /// `owners`: owner addresses (hex, `0x` optional).
    pub owners: Vec<Vec<u8>>,
    /// `operators`: any of these operators in the committee.
    pub operators: Vec<u64>,
    /// `clusters`: the committee is exactly one of these.
    pub clusters: Vec<Vec<u64>>,
    /// `subclusters`: the committee contains one of these as a contiguous run.
    pub subclusters: Vec<Vec<u64>>,
    /// `pubkeys`: validator public keys (hex, `0x` optional).
    pub pubkeys: Vec<Vec<u8>>,
    /// `indices`: beacon indices.
    pub indices: Vec<u64>,
}

fn parse_u64(field: &str, s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>().map_err(|_| {
        ApiError::BadRequest(format!(
            "{field}: {s:?} is not an unsigned 64-bit decimal integer"
        ))
    })
}

fn parse_hex(field: &str, s: &str) -> Result<Vec<u8>, ApiError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    hex::decode(digits).map_err(|e| ApiError::BadRequest(format!("{field}: {s:?}: {e}")))
}

fn bounded<T>(field: &str, v: Vec<T>) -> Result<Vec<T>, ApiError> {
    if v.len() > FILTER_VALUES_MAX {
        return Err(ApiError::BadRequest(format!(
            "{field}: more than {FILTER_VALUES_MAX} values"
        )));
    }
    Ok(v)
}

fn parse_list<T>(
    field: &str,
    value: &str,
    one: impl Fn(&str, &str) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let v = value
        .split(',')
        .map(|s| one(field, s))
        .collect::<Result<Vec<_>, _>>()?;
    bounded(field, v)
}

fn parse_clusters(field: &str, value: &str) -> Result<Vec<Vec<u64>>, ApiError> {
    if value.is_empty() {
        return Ok(Vec::new());
    }
    let v = value
        .split(' ')
        .map(|c| {
            c.split(',')
                .map(|s| parse_u64(field, s))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    bounded(field, v)
}

impl ValidatorsRequest {
    /// Parses a query string (`a=1&b=2`, percent-encoded; `+` is a space). As Go's
    /// `FormValue`, the first value of a repeated key counts; unknown keys are ignored.
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut first = std::collections::HashMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            first
                .entry(k.into_owned())
                .or_insert_with(|| v.into_owned());
        }
        let get = |k: &str| first.get(k).map(String::as_str).unwrap_or("");
        Ok(ValidatorsRequest {
            owners: parse_list("owners", get("owners"), parse_hex)?,
            operators: parse_list("operators", get("operators"), parse_u64)?,
            clusters: parse_clusters("clusters", get("clusters"))?,
            subclusters: parse_clusters("subclusters", get("subclusters"))?,
            pubkeys: parse_list("pubkeys", get("pubkeys"), parse_hex)?,
            indices: parse_list("indices", get("indices"), parse_u64)?,
        })
    }

    /// Whether `share` passes every given filter.
    pub fn matches(&self, share: &ShareRow) -> bool {
        (self.owners.is_empty() || self.owners.iter().any(|o| o[..] == share.owner[..]))
            && (self.operators.is_empty()
                || self.operators.iter().any(|o| share.committee.contains(o)))
            && (self.clusters.is_empty() || self.clusters.contains(&share.committee))
            && (self.subclusters.is_empty()
                || self
                    .subclusters
                    .iter()
                    .any(|c| contains_run(&share.committee, c)))
            && (self.pubkeys.is_empty() || self.pubkeys.iter().any(|p| p[..] == share.pubkey[..]))
            && (self.indices.is_empty() || share.index().is_some_and(|i| self.indices.contains(&i)))
    }
}

/// Whether `run` occurs in `committee` as consecutive elements (the Go handler matches the
/// comma-joined strings, so `1,2` also matched inside `11,2`; IDs are compared here).
fn contains_run(committee: &[u64], run: &[u64]) -> bool {
    run.is_empty() || committee.windows(run.len()).any(|w| w == run)
}

/// The beacon metadata of a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaRow {
    /// Beacon index.
    pub index: u64,
    /// Status.
    pub status: ValidatorStatus,
    /// Activation epoch.
    pub activation_epoch: u64,
}

/// One share as the listing reads it from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRow {
    /// Validator public key.
    pub pubkey: [u8; 48],
    /// Beacon index stored in the share (resolved at start-up).
    pub share_index: Option<u64>,
    /// Beacon metadata, when fetched.
    pub meta: Option<MetaRow>,
    /// Owner address.
    pub owner: [u8; 20],
    /// Committee operator IDs, ascending.
    pub committee: Vec<u64>,
    /// Whether its cluster is liquidated.
    pub liquidated: bool,
}

impl ShareRow {
    fn index(&self) -> Option<u64> {
        self.meta.map(|m| m.index).or(self.share_index)
    }
}

/// The Go node's `validatorJSON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidatorJson {
    /// Public key, hex without `0x` (Go's `api.Hex`).
    pub public_key: String,
    /// Beacon index (0 when unknown, as Go).
    pub index: u64,
    /// Beacon status in the beacon API's words (`""` when unknown, as Go).
    pub status: String,
    /// Activation epoch (0 when unknown).
    pub activation_epoch: u64,
    /// Exit epoch (the store keeps none: see [`exit_epoch_of`]).
    pub exit_epoch: u64,
    /// Owner, hex without `0x`.
    pub owner: String,
    /// Committee operator IDs.
    pub committee: Vec<u64>,
    /// Signatures needed for a decision: 2f + 1 of 3f + 1.
    pub quorum: u64,
    /// Signatures that prove one honest signer: f + 1.
    pub partial_quorum: u64,
    /// Graffiti (shares carry none here).
    pub graffiti: String,
    /// Whether its cluster is liquidated.
    pub liquidated: bool,
}

/// `{"data": [...]}`.
#[derive(Debug, Serialize)]
pub struct ValidatorsResponse {
    /// The matching validators, in public-key order.
    pub data: Vec<ValidatorJson>,
}

/// The beacon API status name of our collapsed status. The store keeps the collapsed
/// status, so the sub-state the beacon node reported is not known: each maps to the
/// sub-state a validator is in for most of that phase.
pub fn status_name(s: ValidatorStatus) -> &'static str {
    match s {
        ValidatorStatus::Unknown => "unknown",
        ValidatorStatus::Pending => "pending_queued",
        ValidatorStatus::Active => "active_ongoing",
        ValidatorStatus::Exiting => "active_exiting",
        ValidatorStatus::Exited => "exited_unslashed",
        ValidatorStatus::Slashed => "exited_slashed",
        ValidatorStatus::Withdrawn => "withdrawal_done",
    }
}

/// The spec's `FAR_FUTURE_EPOCH`: no exit scheduled.
pub const FAR_FUTURE_EPOCH: u64 = u64::MAX;

/// The exit epoch: `FAR_FUTURE_EPOCH` for a validator whose status says no exit was
/// initiated (what the beacon node reports for it); the store does not keep the epoch of an
/// initiated exit, so 0 (Go's value for a share without metadata) otherwise.
pub fn exit_epoch_of(status: ValidatorStatus) -> u64 {
    match status {
        ValidatorStatus::Pending | ValidatorStatus::Active => FAR_FUTURE_EPOCH,
        _ => 0,
    }
}

/// f + 1 and 2f + 1 of a committee of `n` = 3f + 1.
pub fn quorums(n: usize) -> (u64, u64) {
    let f = (n as u64).saturating_sub(1) / 3;
    (2 * f + 1, f + 1)
}

impl From<&ShareRow> for ValidatorJson {
    fn from(s: &ShareRow) -> Self {
        let (quorum, partial_quorum) = quorums(s.committee.len());
        let (index, status, activation_epoch, exit_epoch) = match s.meta {
            Some(m) => (
                m.index,
                status_name(m.status).to_string(),
                m.activation_epoch,
                exit_epoch_of(m.status),
            ),
            None => (s.share_index.unwrap_or(0), String::new(), 0, 0),
        };
        ValidatorJson {
            public_key: hex::encode(s.pubkey),
            index,
            status,
            activation_epoch,
            exit_epoch,
            owner: hex::encode(s.owner),
            committee: s.committee.clone(),
            quorum,
            partial_quorum,
            graffiti: String::new(),
            liquidated: s.liquidated,
        }
    }
}

/// Every share of the store that `req` matches, in public-key order (one read snapshot).
pub fn list(store: &Store, req: &ValidatorsRequest) -> Result<Vec<ValidatorJson>, ApiError> {
    let internal = |e: ssv_storage::StorageError| ApiError::Internal(e.to_string());
    let txn = store.read().map_err(internal)?;
    let mut out = Vec::new();
    txn.scan::<Shares>(None, |pubkey, share| {
        let share = share.to_owned()?;
        let meta = txn
            .get::<Metadata>(&pubkey)?
            .map(|m| m.to_owned())
            .transpose()?;
        let row = ShareRow {
            pubkey,
            share_index: share.validator_index,
            meta: meta.map(|m| MetaRow {
                index: m.index,
                status: m.status,
                activation_epoch: m.activation_epoch,
            }),
            owner: share.owner,
            committee: share.operator_ids.clone(),
            liquidated: share.liquidated,
        };
        if req.matches(&row) {
            out.push(ValidatorJson::from(&row));
        }
        Ok(ControlFlow::Continue(()))
    })
    .map_err(internal)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u8, committee: &[u64], index: Option<u64>) -> ShareRow {
        ShareRow {
            pubkey: [i; 48],
            share_index: index,
            meta: None,
            owner: [i % 2; 20],
            committee: committee.to_vec(),
            liquidated: false,
        }
    }

    fn q(s: &str) -> ValidatorsRequest {
        ValidatorsRequest::parse(s).expect("parses")
    }

    #[test]
    fn parses_every_filter_as_the_go_binder() {
        let r = q(&format!(
            "owners=0x{},{}&operators=1,2&clusters=1,2,3,4+5,6,7,8&subclusters=2,3&pubkeys={}&indices=7,8&unknown=x",
            "01".repeat(20),
            "00".repeat(20),
            "aa".repeat(48)
        ));
        assert_eq!(r.owners, vec![vec![1u8; 20], vec![0u8; 20]]);
        assert_eq!(r.operators, vec![1, 2]);
        assert_eq!(r.clusters, vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]]);
        assert_eq!(r.subclusters, vec![vec![2, 3]]);
        assert_eq!(r.pubkeys, vec![vec![0xaa; 48]]);
        assert_eq!(r.indices, vec![7, 8]);
        assert_eq!(q(""), ValidatorsRequest::default());
        // The first of a repeated key counts, as Go's FormValue.
        assert_eq!(q("indices=1&indices=x").indices, vec![1]);
        assert_eq!(
            q("clusters=1,2%203,4").clusters,
            vec![vec![1, 2], vec![3, 4]]
        );
    }

    #[test]
    fn bad_values_are_bad_requests() {
        for bad in [
            "operators=1,x",
            "operators=-1",
            "operators=1,,2",
            "indices=18446744073709551616",
            "owners=0xzz",
            "pubkeys=abc",
            "clusters=1,2++3",
            "subclusters=a",
        ] {
            let e = ValidatorsRequest::parse(bad).expect_err(bad);
            assert!(matches!(e, ApiError::BadRequest(_)), "{bad}: {e:?}");
        }
        let many = format!("indices={}", vec!["1"; FILTER_VALUES_MAX + 1].join(","));
        assert!(ValidatorsRequest::parse(&many).is_err());
    }

    #[test]
    fn filters_and_within_or_across() {
        let rows = [
            row(1, &[1, 2, 3, 4], Some(10)),
            row(2, &[5, 6, 7, 8], Some(11)),
            row(3, &[1, 2, 3, 5], None),
            row(4, &[11, 2, 3, 4], Some(12)),
        ];
        let pick = |s: &str| -> Vec<u8> {
            let r = q(s);
            rows.iter()
                .filter(|x| r.matches(x))
                .map(|x| x.pubkey[0])
                .collect()
        };
        assert_eq!(pick(""), vec![1, 2, 3, 4]);
        assert_eq!(pick("operators=5"), vec![2, 3]);
        assert_eq!(pick("operators=5,4"), vec![1, 2, 3, 4]);
        assert_eq!(pick("clusters=1,2,3,4"), vec![1]);
        assert_eq!(pick("clusters=1,2,3,4 5,6,7,8"), vec![1, 2]);
        assert_eq!(pick("clusters=1,2,3"), Vec::<u8>::new());
        assert_eq!(pick("subclusters=1,2"), vec![1, 3], "not inside 11,2");
        assert_eq!(pick("subclusters=2,3,4"), vec![1, 4]);
        assert_eq!(pick("indices=11,12"), vec![2, 4]);
        assert_eq!(
            pick("indices=0"),
            Vec::<u8>::new(),
            "no index is not index 0"
        );
        assert_eq!(pick(&format!("pubkeys=0x{}", "03".repeat(48))), vec![3]);
        assert_eq!(pick(&format!("owners={}", "01".repeat(20))), vec![1, 3]);
        assert_eq!(
            pick(&format!("owners={}&operators=5", "01".repeat(20))),
            vec![3],
            "filters are ANDed"
        );
    }

    #[test]
    fn json_of_a_share() {
        let mut r = row(9, &[1, 2, 3, 4, 5, 6, 7], Some(3));
        let j = ValidatorJson::from(&r);
        assert_eq!(j.public_key, "09".repeat(48));
        assert_eq!(j.owner, "01".repeat(20));
        assert_eq!((j.index, j.status.as_str(), j.exit_epoch), (3, "", 0));
        assert_eq!((j.quorum, j.partial_quorum), (5, 3));
        r.meta = Some(MetaRow {
            index: 3,
            status: ValidatorStatus::Active,
            activation_epoch: 2,
        });
        let j = ValidatorJson::from(&r);
        assert_eq!(j.status, "active_ongoing");
        assert_eq!((j.activation_epoch, j.exit_epoch), (2, FAR_FUTURE_EPOCH));
        assert_eq!(quorums(4), (3, 2));
        assert_eq!(quorums(13), (9, 5));
    }
}
