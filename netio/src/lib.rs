//! The network layer: libp2p host, gossipsub on `ssv.v2.<subnet>` topics, discv5 discovery,
//! peer scoring and gating, and delivery of inbound messages to the shard owning their subnet.
