//! Vector cases of the `qbft` module: `tests.MsgProcessingSpecTest`, `tests.ControllerSpecTest`,
//! `tests.MsgSpecTest`, `tests.CreateMsgSpecTest`, `tests.RoundRobinSpecTest` and
//! `timeout.SpecTest`.
//!
//! Each case drives the real [`crate::qbft`] state machines with the fixture operator keys,
//! checks the broadcast messages byte for byte, the error code, the timer actions, and the
//! post-state field by field against `qbft/state_comparison/<type>/<name>.json` (the vectors'
//! `PostRoot` hashes the Go implementation's JSON and is not portable).

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;
use ssz::Encode;
use tree_hash::TreeHash;

use super::json::{as_array, as_b64, as_fixed, as_hex, field, u64_field};
use super::rsa::{OperatorKey, pem_to_der, verify};
use super::types_cases::{
    LooseSignedSsvMessage, committee_member_from_json, signed_ssv_message_from_json,
};
use super::{CaseContext, CaseFn, expect_code};
use crate::Error;
use crate::error_code::ErrorCode;
use crate::message::{RsaSignature, SignedSsvMessage};
use crate::qbft::{
    self, Action, Config, Controller, Env, Instance, Message, MsgContainer, OperatorSigner,
    ProcessingMessage, SignatureVerifier, State, ValueCheck,
};
use crate::types::{CommitteeOperator, OperatorId, Round};

/// `(prefix, runner)` for the `qbft` module.
pub const CASES: &[(&str, CaseFn)] = &[
    ("tests.MsgProcessingSpecTest", msg_processing),
    ("tests.ControllerSpecTest", controller),
    ("tests.MsgSpecTest", msg_spec),
    ("tests.CreateMsgSpecTest", create_msg),
    ("tests.RoundRobinSpecTest", round_robin),
    ("timeout.SpecTest", timeout),
];

/// ssv-spec's test cut-off round (`TestingCutOffRound`).
const TESTING_CUT_OFF_ROUND: Round = 15;
/// Height at which the spec's test harness makes operator 2 the proposer.
const CHANGE_PROPOSER_HEIGHT: u64 = 10;
/// The value ssv-spec's testing value check rejects (`TestingInvalidValueCheck`).
const TESTING_INVALID_VALUE: [u8; 4] = [1, 1, 1, 1];

/// The proposer of ssv-spec's testing configuration: operator 1, except at height 10
/// (operator 2, a hook of the spec's test runner).
fn testing_proposer(state: &State, _round: Round) -> OperatorId {
    if state.height == CHANGE_PROPOSER_HEIGHT {
        2
    } else {
        1
    }
}

pub(crate) fn testing_config() -> Config {
    Config {
        proposer: testing_proposer,
        cut_off_round: TESTING_CUT_OFF_ROUND,
        verify_all_signatures: true,
    }
}

/// Signs with a fixture key.
pub(crate) struct FixtureSigner {
    pub(crate) id: OperatorId,
    pub(crate) key: Option<OperatorKey>,
}

impl OperatorSigner for FixtureSigner {
    fn operator_id(&self) -> OperatorId {
        self.id
    }
    fn sign_ssv_message(&self, encoded: &[u8]) -> Result<RsaSignature, Error> {
        let key = self.key.as_ref().ok_or_else(|| {
            Error::spec(
                ErrorCode::MessageSignatureInvalid,
                "no fixture key for operator",
            )
        })?;
        key.sign(encoded)
            .map_err(|e| Error::spec(ErrorCode::MessageSignatureInvalid, e))
    }
}

/// Verifies with the committee's PEM keys (DER cached per key).
#[derive(Default)]
pub(crate) struct FixtureVerifier {
    der: RefCell<HashMap<Vec<u8>, Vec<u8>>>,
}

impl SignatureVerifier for FixtureVerifier {
    fn verify(
        &self,
        operator: &CommitteeOperator,
        encoded: &[u8],
        signature: &RsaSignature,
    ) -> bool {
        let mut cache = self.der.borrow_mut();
        if !cache.contains_key(&operator.rsa_public_key_pem) {
            let Ok(der) = pem_to_der(&operator.rsa_public_key_pem) else {
                return false;
            };
            cache.insert(operator.rsa_public_key_pem.clone(), der);
        }
        cache
            .get(&operator.rsa_public_key_pem)
            .is_some_and(|der| verify(der, encoded, signature))
    }
}

/// ssv-spec's testing value check: no empty value, not `[1, 1, 1, 1]`.
struct TestingValueCheck;

impl ValueCheck for TestingValueCheck {
    fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        if value.is_empty() || value == TESTING_INVALID_VALUE {
            return Err(Error::spec(ErrorCode::QBFTValueInvalid, "invalid value"));
        }
        Ok(())
    }
}

struct Fixture {
    signer: FixtureSigner,
    verifier: FixtureVerifier,
}

impl Fixture {
    /// The signer of operator `id` from `PrivateKeys.OperatorKeys` (hex of a PEM).
    fn new(v: &Value, id: OperatorId) -> Result<Self, String> {
        let key = match v.get("PrivateKeys").and_then(|k| k.get("OperatorKeys")) {
            Some(keys) => match keys.get(id.to_string()) {
                Some(hex_pem) => Some(OperatorKey::from_pem(&as_hex(hex_pem)?)?),
                None => None,
            },
            None => None,
        };
        Ok(Fixture {
            signer: FixtureSigner { id, key },
            verifier: FixtureVerifier::default(),
        })
    }

    fn env(&self) -> Env<'_> {
        Env {
            signer: &self.signer,
            verifier: &self.verifier,
            value_check: &TestingValueCheck,
        }
    }
}

fn bool_field(v: &Value, name: &str) -> bool {
    v.get(name).and_then(Value::as_bool).unwrap_or(false)
}

pub(crate) fn processing_from_json(v: &Value) -> Result<ProcessingMessage, String> {
    let signed = signed_ssv_message_from_json(field(v, "SignedMessage")?)?;
    ProcessingMessage::new(signed).map_err(|e| e.to_string())
}

pub(crate) fn container_from_json(v: &Value) -> Result<MsgContainer, String> {
    let mut c = MsgContainer::default();
    if let Some(Value::Object(rounds)) = v.get("Msgs") {
        for (round, msgs) in rounds {
            let round: Round = round
                .parse()
                .map_err(|e| format!("round key {round}: {e}"))?;
            let list = as_array(msgs)?
                .iter()
                .map(processing_from_json)
                .collect::<Result<Vec<_>, _>>()?;
            c.msgs.insert(round, list);
        }
    }
    Ok(c)
}

pub(crate) fn state_from_json(v: &Value) -> Result<State, String> {
    let proposal = match v.get("ProposalAcceptedForCurrentRound") {
        None | Some(Value::Null) => None,
        Some(p) => Some(processing_from_json(p)?),
    };
    Ok(State {
        committee_member: committee_member_from_json(field(v, "CommitteeMember")?)?,
        id: as_b64(field(v, "ID")?)?,
        round: u64_field(v, "Round")?,
        height: u64_field(v, "Height")?,
        last_prepared_round: u64_field(v, "LastPreparedRound")?,
        last_prepared_value: as_b64(field(v, "LastPreparedValue")?)?,
        proposal_accepted_for_current_round: proposal,
        decided: bool_field(v, "Decided"),
        decided_value: as_b64(field(v, "DecidedValue")?)?,
        propose_container: container_from_json(field(v, "ProposeContainer")?)?,
        prepare_container: container_from_json(field(v, "PrepareContainer")?)?,
        commit_container: container_from_json(field(v, "CommitContainer")?)?,
        round_change_container: container_from_json(field(v, "RoundChangeContainer")?)?,
    })
}

pub(crate) fn instance_from_json(v: &Value, config: Config) -> Result<Instance, String> {
    Ok(Instance::from_parts(
        config,
        state_from_json(field(v, "State")?)?,
        as_b64(v.get("StartValue").unwrap_or(&Value::Null))?,
        bool_field(v, "forceStop"),
    ))
}

pub(crate) fn controller_from_json(v: &Value, config: Config) -> Result<Controller, String> {
    let stored = as_array(v.get("StoredInstances").unwrap_or(&Value::Null))?
        .iter()
        .map(|i| instance_from_json(i, config))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Controller {
        identifier: as_b64(field(v, "Identifier")?)?,
        height: u64_field(v, "Height")?,
        stored_instances: stored,
        committee_member: committee_member_from_json(field(v, "CommitteeMember")?)?,
        config,
    })
}

/// Compares two states field by field and names the first difference.
pub(crate) fn compare_states(actual: &State, expected: &State, at: &str) -> Result<(), String> {
    macro_rules! check {
        ($f:ident) => {
            if actual.$f != expected.$f {
                return Err(format!(
                    "{at}: post-state field {} differs: got {}, expected {}",
                    stringify!($f),
                    short(&format!("{:?}", actual.$f)),
                    short(&format!("{:?}", expected.$f))
                ));
            }
        };
    }
    check!(committee_member);
    check!(id);
    check!(round);
    check!(height);
    check!(last_prepared_round);
    check!(last_prepared_value);
    check!(decided);
    check!(decided_value);
    check!(proposal_accepted_for_current_round);
    check!(propose_container);
    check!(prepare_container);
    check!(commit_container);
    check!(round_change_container);
    Ok(())
}

pub(crate) fn short(s: &str) -> String {
    const SHOWN_MAX: usize = 300;
    if s.len() > SHOWN_MAX {
        format!("{}…", &s[..s.floor_char_boundary(SHOWN_MAX)])
    } else {
        s.to_string()
    }
}

/// The state-comparison file of this case: `state_comparison/<type with _>/<name>.json`,
/// the name being the file stem after the type with `_` read as spaces.
fn state_comparison(ctx: &CaseContext) -> Result<Value, String> {
    let (test_type, name) = ctx
        .file_stem
        .split_once('_')
        .ok_or("file name without a test name")?;
    let path = ctx
        .root
        .join(&ctx.module)
        .join("state_comparison")
        .join(test_type.replace('.', "_"))
        .join(format!("{}.json", name.replace('_', " ")));
    let bytes =
        std::fs::read(&path).map_err(|e| format!("state comparison {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("state comparison json: {e}"))
}

/// Turns an input JSON message into what the instance processes; a message the spec would
/// reject on its structure gives that error.
fn input_message(v: &Value) -> Result<Result<ProcessingMessage, Error>, String> {
    let loose = LooseSignedSsvMessage::from_json(v)?;
    if let Err(e) = loose.validate() {
        return Ok(Err(e));
    }
    Ok(loose.into_strict().and_then(ProcessingMessage::new))
}

fn broadcasts(actions: &[Action]) -> Vec<&SignedSsvMessage> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// `(timeouts, last round)` as the spec's testing timer records them.
fn timer_state(actions: &[Action]) -> (u64, Round) {
    actions.iter().fold((0, 0), |(n, r), a| match a {
        Action::SetTimer { round, .. } => (n + 1, *round),
        _ => (n, r),
    })
}

fn check_timer(v: &Value, actions: &[Action]) -> Result<(), String> {
    match v.get("ExpectedTimerState") {
        None | Some(Value::Null) => Ok(()),
        Some(t) => {
            let want = (u64_field(t, "Timeouts")?, u64_field(t, "Round")?);
            let got = timer_state(actions);
            if got != want {
                return Err(format!(
                    "timer (timeouts, round) {got:?}, expected {want:?}"
                ));
            }
            Ok(())
        }
    }
}

fn check_outputs(v: &Value, actions: &[Action]) -> Result<(), String> {
    let expected = as_array(v.get("OutputMessages").unwrap_or(&Value::Null))?
        .iter()
        .map(signed_ssv_message_from_json)
        .collect::<Result<Vec<_>, _>>()?;
    let got = broadcasts(actions);
    if got.len() != expected.len() {
        return Err(format!(
            "{} messages broadcast, expected {}",
            got.len(),
            expected.len()
        ));
    }
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        if g.as_ssz_bytes() != e.as_ssz_bytes() {
            return Err(format!(
                "broadcast message {i} differs from the expected bytes"
            ));
        }
    }
    Ok(())
}

fn msg_processing(v: &Value, ctx: &CaseContext) -> Result<(), String> {
    let pre = field(v, "Pre")?;
    let mut instance = instance_from_json(pre, testing_config())?;
    let fixture = Fixture::new(v, instance.state.committee_member.operator_id)?;
    let mut actions = Vec::new();
    let mut last: Result<(), Error> = Ok(());
    for m in as_array(field(v, "InputMessages")?)? {
        let result = input_message(m)?.and_then(|msg| {
            instance
                .process_msg(fixture.env(), &msg, &mut actions)
                .map(drop)
        });
        if let Err(e) = result {
            last = Err(e);
        }
    }
    expect_code(last, u64_field(v, "ExpectedErrorCode")?)?;
    check_outputs(v, &actions)?;
    check_timer(v, &actions)?;
    let expected = state_from_json(&state_comparison(ctx)?)?;
    compare_states(&instance.state, &expected, "instance")
}

fn timeout(v: &Value, _ctx: &CaseContext) -> Result<(), String> {
    let pre = field(v, "Pre")?;
    let mut instance = instance_from_json(pre, testing_config())?;
    let fixture = Fixture::new(v, instance.state.committee_member.operator_id)?;
    let mut actions = Vec::new();
    let before = instance.state.round;
    let result = instance.upon_round_timeout(fixture.env(), &mut actions);
    let ok = result.is_ok();
    expect_code(result, u64_field(v, "ExpectedErrorCode")?)?;
    check_outputs(v, &actions)?;
    check_timer(v, &actions)?;
    // No state comparison exists for timeouts: check what the spec's `UponRoundTimeout`
    // promises instead.
    if ok
        && (instance.state.round != before + 1
            || instance.state.proposal_accepted_for_current_round.is_some())
    {
        return Err("after a timeout: not in the next round, or a proposal still accepted".into());
    }
    Ok(())
}

fn controller(v: &Value, ctx: &CaseContext) -> Result<(), String> {
    let mut ctrl = controller_from_json(field(v, "Controller")?, testing_config())?;
    let fixture = Fixture::new(v, ctrl.committee_member.operator_id)?;
    let comparisons = state_comparison(ctx)?;
    let comparisons: Vec<Value> = match comparisons {
        Value::Array(a) => a,
        other => vec![other],
    };
    let start_height = v
        .get("StartHeight")
        .map(super::json::as_u64)
        .transpose()?
        .unwrap_or(0);
    let mut actions = Vec::new();
    let mut last: Result<(), Error> = Ok(());
    let runs = as_array(field(v, "RunInstanceData")?)?;
    for (i, run) in runs.iter().enumerate() {
        let height = match run.get("Height") {
            Some(h) if !h.is_null() => super::json::as_u64(h)?,
            _ => i as u64 + start_height,
        };
        let value = as_b64(run.get("InputValue").unwrap_or(&Value::Null))?;
        if let Err(e) = ctrl.start_new_instance(fixture.env(), height, value, &mut actions) {
            last = Err(e);
        }
        let decided_state = field(run, "ExpectedDecidedState")?;
        let want_value = as_b64(decided_state.get("DecidedVal").unwrap_or(&Value::Null))?;
        let mut decided_count = 0u64;
        for m in as_array(run.get("InputMessages").unwrap_or(&Value::Null))? {
            let loose = LooseSignedSsvMessage::from_json(m)?;
            let result = loose
                .into_strict()
                .and_then(|signed| ctrl.process_msg(fixture.env(), signed, &mut actions));
            match result {
                Ok(Some(decided)) => {
                    decided_count += 1;
                    if decided.full_data[..] != want_value[..] {
                        return Err(format!("run {i}: decided value differs"));
                    }
                }
                Ok(None) => {}
                Err(e) => last = Err(e),
            }
        }
        let want_count = u64_field(decided_state, "DecidedCnt")?;
        if decided_count != want_count {
            return Err(format!(
                "run {i}: decided {decided_count} times, expected {want_count} (last: {last:?})"
            ));
        }
        check_timer(run, &actions).map_err(|e| format!("run {i}: {e}"))?;
        if let Some(b) = decided_state
            .get("BroadcastedDecided")
            .filter(|b| !b.is_null())
        {
            let want = signed_ssv_message_from_json(b)?.as_ssz_bytes();
            let found = broadcasts(&actions)
                .iter()
                .filter(|m| m.as_ssz_bytes() == want)
                .count();
            if found != 1 {
                return Err(format!(
                    "run {i}: expected decided message broadcast {found} times, expected once"
                ));
            }
        }
        let expected = comparisons
            .get(i)
            .ok_or_else(|| format!("no state comparison for run {i}"))?;
        compare_controllers(&ctrl, &controller_from_json(expected, testing_config())?, i)?;
    }
    expect_code(last, u64_field(v, "ExpectedErrorCode")?)?;
    let outputs = as_array(v.get("OutputMessages").unwrap_or(&Value::Null))?;
    if !outputs.is_empty() {
        check_outputs(v, &actions)?;
    }
    Ok(())
}

pub(crate) fn compare_controllers(
    actual: &Controller,
    expected: &Controller,
    run: usize,
) -> Result<(), String> {
    if actual.identifier != expected.identifier {
        return Err(format!("run {run}: controller identifier differs"));
    }
    if actual.height != expected.height {
        return Err(format!(
            "run {run}: controller height {}, expected {}",
            actual.height, expected.height
        ));
    }
    if actual.committee_member != expected.committee_member {
        return Err(format!("run {run}: controller committee member differs"));
    }
    if actual.stored_instances.len() != expected.stored_instances.len() {
        return Err(format!(
            "run {run}: {} stored instances, expected {}",
            actual.stored_instances.len(),
            expected.stored_instances.len()
        ));
    }
    for (k, (a, e)) in actual
        .stored_instances
        .iter()
        .zip(&expected.stored_instances)
        .enumerate()
    {
        compare_states(&a.state, &e.state, &format!("run {run} instance {k}"))?;
        if a.start_value != e.start_value {
            return Err(format!("run {run} instance {k}: start value differs"));
        }
    }
    Ok(())
}

fn msg_spec(v: &Value, _ctx: &CaseContext) -> Result<(), String> {
    let encoded = as_array(v.get("EncodedMessages").unwrap_or(&Value::Null))?;
    let roots = as_array(v.get("ExpectedRoots").unwrap_or(&Value::Null))?;
    let mut last: Result<(), Error> = Ok(());
    for (i, m) in as_array(field(v, "Messages")?)?.iter().enumerate() {
        let loose = LooseSignedSsvMessage::from_json(m)?;
        if let Err(e) = loose.validate() {
            last = Err(e);
            continue;
        }
        let strict = match loose.into_strict() {
            Ok(s) => s,
            Err(e) => {
                last = Err(e);
                continue;
            }
        };
        let qbft_msg = match Message::from_ssz(&strict.ssv_message.data).and_then(|q| {
            q.validate()?;
            Ok(q)
        }) {
            Ok(q) => q,
            Err(e) => {
                last = Err(e);
                continue;
            }
        };
        if qbft_msg.to_ssz() != strict.ssv_message.data[..] {
            return Err(format!(
                "message {i}: QBFT message does not re-encode to its bytes"
            ));
        }
        if let Some(enc) = encoded.get(i)
            && strict.as_ssz_bytes() != as_b64(enc)?
        {
            return Err(format!("message {i}: encoding differs"));
        }
        if let Some(root) = roots.get(i) {
            let want = as_fixed::<32>(root)?;
            let got = strict.tree_hash_root().0;
            if got != want {
                return Err(format!(
                    "message {i}: root {} != expected {}",
                    hex::encode(got),
                    hex::encode(want)
                ));
            }
        }
    }
    expect_code(last, u64_field(v, "ExpectedErrorCode")?)
}

fn create_msg(v: &Value, ctx: &CaseContext) -> Result<(), String> {
    // The spec's test state: the 4-operator testing committee, operator 1, identifier
    // [1, 2, 3, 4] (the vector's `Identifier` is its 56-byte message ID), height 0.
    let operator = v
        .get("OperatorID")
        .map(super::json::as_u64)
        .transpose()?
        .unwrap_or(1);
    let operator = if operator == 0 { 1 } else { operator };
    let fixture = if v.get("PrivateKeys").is_some() {
        Fixture::new(v, operator)?
    } else {
        // The spec signs with its 4-operator testing key set even where the vector leaves
        // the keys out; the other CreateMsg vectors of the folder carry that set.
        Fixture::new(&testing_key_set(ctx)?, operator)?
    };
    let identifier = as_b64(field(v, "Identifier")?)?;
    let mut member = committee_member_from_json(field(v, "CommitteeMember")?)?;
    member.operator_id = operator;
    let mut state = State::new(member, identifier, 0);
    state.round = u64_field(v, "Round")?;
    let value = as_fixed::<32>(field(v, "Value")?)?;
    let state_value = as_b64(v.get("StateValue").unwrap_or(&Value::Null))?;
    let list = |name: &str| -> Result<Vec<ProcessingMessage>, String> {
        as_array(v.get(name).unwrap_or(&Value::Null))?
            .iter()
            .map(|m| {
                ProcessingMessage::new(signed_ssv_message_from_json(m)?).map_err(|e| e.to_string())
            })
            .collect()
    };
    let round_changes = list("RoundChangeJustifications")?;
    let prepares = list("PrepareJustifications")?;
    let signer = &fixture.signer;
    let result = match field(v, "CreateType")?.as_str().unwrap_or_default() {
        "CreateProposal" | "createProposal" => {
            qbft::create_proposal(&state, signer, &state_value, &round_changes, &prepares)
        }
        "CreatePrepare" => qbft::create_prepare(&state, signer, state.round, value),
        "CreateCommit" => qbft::create_commit(&state, signer, value),
        "CreateRoundChange" => {
            if let Some(first) = prepares.first() {
                state.last_prepared_round = first.qbft.round;
                state.last_prepared_value = state_value.clone();
                for p in &prepares {
                    state
                        .prepare_container
                        .add_first_msg_for_signer_and_round(p);
                }
            }
            qbft::create_round_change(&state, signer, state.round, &state_value)
        }
        other => return Err(format!("unknown CreateType {other:?}")),
    };
    let expected_code = u64_field(v, "ExpectedErrorCode")?;
    let msg = match result {
        Ok(m) => m,
        Err(e) => return expect_code(Err(e), expected_code),
    };
    expect_code(Ok(()), expected_code)?;
    let want = as_fixed::<32>(field(v, "ExpectedRoot")?)?;
    let got = msg.tree_hash_root().0;
    if got != want {
        return Err(format!(
            "root {} != expected {}",
            hex::encode(got),
            hex::encode(want)
        ));
    }
    Ok(())
}

/// The `PrivateKeys` of the first `tests.CreateMsgSpecTest` vector of the folder that has them.
fn testing_key_set(ctx: &CaseContext) -> Result<Value, String> {
    let dir = ctx.root.join(&ctx.module).join("tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("tests.CreateMsgSpecTest_"))
        })
        .collect();
    files.sort();
    for path in files {
        let bytes = std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|e| format!("json: {e}"))?;
        if json.get("PrivateKeys").is_some_and(|k| !k.is_null()) {
            return Ok(json);
        }
    }
    Err("no CreateMsg vector carries the testing key set".into())
}

fn round_robin(v: &Value, _ctx: &CaseContext) -> Result<(), String> {
    let member = committee_member_from_json(field(v, "Share")?)?;
    let heights = as_array(field(v, "Heights")?)?;
    let rounds = as_array(field(v, "Rounds")?)?;
    let proposers = as_array(field(v, "Proposers")?)?;
    if heights.len() != rounds.len() || rounds.len() != proposers.len() {
        return Err("Heights, Rounds and Proposers differ in length".into());
    }
    let mut state = State::new(member, Vec::new(), 0);
    for ((h, r), p) in heights.iter().zip(rounds).zip(proposers) {
        state.height = super::json::as_u64(h)?;
        let round = super::json::as_u64(r)?;
        let want = super::json::as_u64(p)?;
        let got = qbft::round_robin_proposer(&state, round);
        if got != want {
            return Err(format!(
                "height {} round {round}: proposer {got}, expected {want}",
                state.height
            ));
        }
    }
    Ok(())
}
