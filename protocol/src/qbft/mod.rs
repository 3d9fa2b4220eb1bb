//! QBFT (Istanbul BFT) as ssv-spec v1.2.2 runs it: wire message now; the instance and
//! controller state machines live beside it.

mod message;

pub use message::{Message, MessageType};
