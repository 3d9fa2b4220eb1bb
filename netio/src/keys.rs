//! The node's network key: one secp256k1 secret that is both the libp2p identity (peer ID) and
//! the discv5 / ENR key, as in the Go node. It is generated once and persisted in the data
//! directory so that the peer ID and the ENR's node ID survive restarts.

use std::fs;
use std::io::Write;
use std::path::Path;

use libp2p::identity::{self, Keypair};
use rand::RngCore;

use crate::error::NetioError;

/// File name of the persisted key inside the data directory (64 hex characters).
pub const NETWORK_KEY_FILE: &str = "network.key";
/// Bytes of a secp256k1 secret key.
pub const SECRET_KEY_LEN: usize = 32;

/// A secp256k1 network secret usable by both libp2p and discv5.
#[derive(Clone)]
pub struct NetworkKey {
    secret: [u8; SECRET_KEY_LEN],
}

impl std::fmt::Debug for NetworkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("NetworkKey")
            .field("peer_id", &self.peer_id())
            .finish()
    }
}

impl NetworkKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        loop {
            let mut secret = [0u8; SECRET_KEY_LEN];
            rand::thread_rng().fill_bytes(&mut secret);
            // A random 32-byte string is a valid scalar except with probability ~2^-128.
            if let Ok(key) = Self::from_bytes(secret) {
                return key;
            }
        }
    }

    /// Wraps 32 secret bytes, checking that they form a valid secp256k1 scalar.
    pub fn from_bytes(secret: [u8; SECRET_KEY_LEN]) -> Result<Self, NetioError> {
        let mut copy = secret;
        identity::secp256k1::SecretKey::try_from_bytes(&mut copy)
            .map_err(|e| NetioError::Config(format!("invalid secp256k1 secret: {e}")))?;
        Ok(Self { secret })
    }

    /// Loads `<data_dir>/network.key`, or generates and writes it (mode 0600) when absent.
    pub fn load_or_generate(data_dir: &Path) -> Result<Self, NetioError> {
        let path = data_dir.join(NETWORK_KEY_FILE);
        let io_err = |source| NetioError::KeyIo {
            path: path.clone(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(text) => Self::parse_hex(text.trim()).ok_or(NetioError::KeyCorrupt(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(data_dir).map_err(io_err)?;
                let key = Self::generate();
                write_private(&path, key.to_hex().as_bytes()).map_err(io_err)?;
                Ok(key)
            }
            Err(e) => Err(io_err(e)),
        }
    }

    fn parse_hex(text: &str) -> Option<Self> {
        if text.len() != SECRET_KEY_LEN * 2 {
            return None;
        }
        let mut secret = [0u8; SECRET_KEY_LEN];
        for (i, byte) in secret.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Self::from_bytes(secret).ok()
    }

    fn to_hex(&self) -> String {
        crate::spec::hex_lower(&self.secret)
    }

    /// The libp2p keypair.
    pub fn libp2p_keypair(&self) -> Keypair {
        let mut copy = self.secret;
        let sk = identity::secp256k1::SecretKey::try_from_bytes(&mut copy)
            .expect("validated at construction");
        Keypair::from(identity::secp256k1::Keypair::from(sk))
    }

    /// The discv5 / ENR key.
    pub fn enr_key(&self) -> enr::CombinedKey {
        let mut copy = self.secret;
        enr::CombinedKey::secp256k1_from_bytes(&mut copy).expect("validated at construction")
    }

    /// The peer ID derived from the key.
    pub fn peer_id(&self) -> libp2p::PeerId {
        self.libp2p_keypair().public().to_peer_id()
    }
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_key_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = NetworkKey::load_or_generate(dir.path()).unwrap();
        let b = NetworkKey::load_or_generate(dir.path()).unwrap();
        assert_eq!(a.peer_id(), b.peer_id());
        assert_eq!(a.secret, b.secret);
    }

    #[test]
    fn corrupt_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(NETWORK_KEY_FILE), "zz").unwrap();
        assert!(matches!(
            NetworkKey::load_or_generate(dir.path()),
            Err(NetioError::KeyCorrupt(_))
        ));
        // The zero scalar is not a valid key.
        fs::write(dir.path().join(NETWORK_KEY_FILE), "00".repeat(32)).unwrap();
        assert!(NetworkKey::load_or_generate(dir.path()).is_err());
    }

    #[test]
    fn enr_and_libp2p_keys_agree() {
        use enr::EnrPublicKey;
        let key = NetworkKey::generate();
        let enr_pub = enr::EnrKey::public(&key.enr_key()).encode();
        let p2p_pub = key.libp2p_keypair().public();
        let p2p_secp = p2p_pub.try_into_secp256k1().unwrap().to_bytes();
        assert_eq!(enr_pub.as_slice(), p2p_secp.as_slice());
    }
}
