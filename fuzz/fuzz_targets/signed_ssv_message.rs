//! Gossip bytes → `SignedSSVMessage` and its inner message. Decoding must never panic, and
//! whatever decodes must re-encode to bytes that decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ssv_protocol::message::{MsgType, SignedSsvMessage};
use ssv_protocol::partial_sig::PartialSignatureMessages;
use ssv_protocol::qbft;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = SignedSsvMessage::from_ssz(data) else {
        return;
    };
    let _ = msg.validate();
    let again = SignedSsvMessage::from_ssz(&msg.to_ssz()).expect("re-encoded message decodes");
    assert_eq!(again, msg);
    match msg.ssv_message.kind() {
        Some(MsgType::Consensus) => {
            if let Ok(q) = qbft::Message::from_ssz(&msg.ssv_message.data) {
                let _ = q.validate();
                assert_eq!(qbft::Message::from_ssz(&q.to_ssz()).as_ref(), Ok(&q));
            }
        }
        Some(MsgType::PartialSignature) => {
            if let Ok(p) = PartialSignatureMessages::from_ssz(&msg.ssv_message.data) {
                let _ = p.validate();
                assert_eq!(PartialSignatureMessages::from_ssz(&p.to_ssz()).as_ref(), Ok(&p));
            }
        }
        None => {}
    }
});
