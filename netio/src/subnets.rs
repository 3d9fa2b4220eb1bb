//! The set of subnets a node is subscribed to, and its ENR encoding.
//!
//! In the ENR the set is the `subnets` entry: an SSZ `Bitvector[128]` (prysm's
//! `bitfield.Bitvector128`) written as a 16-byte RLP string, where subnet `i` is bit `i % 8`
//! (least significant first) of byte `i / 8`.

use crate::spec::{SUBNET_COUNT, Subnet};

/// Bytes of the ENR `subnets` bitvector.
pub const SUBNETS_ENR_LEN: usize = SUBNET_COUNT / 8;

/// A set of subnets as a 128-bit mask (bit `i` = subnet `i`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Subnets(u128);

impl Subnets {
    /// No subnets.
    pub const NONE: Subnets = Subnets(0);
    /// All 128 subnets (an exporter).
    pub const ALL: Subnets = Subnets(u128::MAX);

    /// Adds a subnet; returns whether it was absent.
    pub fn insert(&mut self, subnet: Subnet) -> bool {
        let bit = 1u128 << subnet.index();
        let absent = self.0 & bit == 0;
        self.0 |= bit;
        absent
    }

    /// Removes a subnet; returns whether it was present.
    pub fn remove(&mut self, subnet: Subnet) -> bool {
        let bit = 1u128 << subnet.index();
        let present = self.0 & bit != 0;
        self.0 &= !bit;
        present
    }

    /// Membership.
    pub fn contains(&self, subnet: Subnet) -> bool {
        self.0 & (1u128 << subnet.index()) != 0
    }

    /// Number of subnets in the set.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Subnets in both sets.
    pub fn intersection(&self, other: &Subnets) -> Subnets {
        Subnets(self.0 & other.0)
    }

    /// Iterates the subnets in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = Subnet> + '_ {
        Subnet::all().filter(|s| self.contains(*s))
    }

    /// The 16-byte bitvector of the ENR `subnets` entry.
    pub fn to_enr_bytes(&self) -> [u8; SUBNETS_ENR_LEN] {
        // Little-endian byte order puts subnet i in byte i/8, bit i%8: exactly the SSZ
        // bitvector layout.
        self.0.to_le_bytes()
    }

    /// Parses the ENR `subnets` bitvector. Go nodes always write 16 bytes; anything else is
    /// rejected so that a malformed record never looks like "shares no subnet".
    pub fn from_enr_bytes(bytes: &[u8]) -> Option<Subnets> {
        let arr: [u8; SUBNETS_ENR_LEN] = bytes.try_into().ok()?;
        Some(Subnets(u128::from_le_bytes(arr)))
    }

    /// The hex form Go puts in the handshake metadata (`Subnets.String()`): hex of the 16 bytes.
    pub fn to_hex(&self) -> String {
        crate::spec::hex_lower(&self.to_enr_bytes())
    }
}

impl FromIterator<Subnet> for Subnets {
    fn from_iter<I: IntoIterator<Item = Subnet>>(subnets: I) -> Self {
        let mut set = Subnets::NONE;
        for s in subnets {
            set.insert(s);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(i: usize) -> Subnet {
        Subnet::new(i).unwrap()
    }

    #[test]
    fn enr_layout_is_lsb_first_per_byte() {
        let set = Subnets::from_iter([s(0), s(9), s(127)]);
        let bytes = set.to_enr_bytes();
        assert_eq!(bytes[0], 0b0000_0001);
        assert_eq!(bytes[1], 0b0000_0010);
        assert_eq!(bytes[15], 0b1000_0000);
        assert_eq!(Subnets::from_enr_bytes(&bytes), Some(set));
        assert_eq!(set.to_hex(), "01020000000000000000000000000080");
    }

    #[test]
    fn set_operations() {
        let mut a = Subnets::from_iter([s(1), s(2), s(3)]);
        let b = Subnets::from_iter([s(3), s(4)]);
        assert_eq!(a.intersection(&b), Subnets::from_iter([s(3)]));
        assert!(a.remove(s(2)));
        assert!(!a.remove(s(2)));
        assert!(a.insert(s(100)));
        assert_eq!(
            a.iter().map(|x| x.index()).collect::<Vec<_>>(),
            vec![1, 3, 100]
        );
        assert_eq!(a.len(), 3);
        assert_eq!(Subnets::ALL.len(), 128);
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert_eq!(Subnets::from_enr_bytes(&[0u8; 15]), None);
        assert_eq!(Subnets::from_enr_bytes(&[0u8; 17]), None);
    }
}
