//! Identifiers shaped like CloudStack's: random version-4 UUIDs for objects
//! and jobs, MAC addresses in CloudStack's `02:00:` range.

use rand::Rng;

pub fn uuid() -> String {
    let mut b: [u8; 16] = rand::thread_rng().gen();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Whether a value has the shape of a UUID, as the server checks before it
/// looks the object up.
pub fn looks_like_uuid(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

pub fn mac(n: u32) -> String {
    format!(
        "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
        (n >> 24) as u8,
        (n >> 16) as u8,
        (n >> 8) as u8,
        n as u8
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_well_formed_and_distinct() {
        let (a, b) = (uuid(), uuid());
        assert!(looks_like_uuid(&a) && looks_like_uuid(&b));
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4");
    }
}
