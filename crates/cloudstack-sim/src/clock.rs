//! Wall-clock time in the formats CloudStack uses on the wire.
//!
//! The server writes timestamps as `yyyy-MM-dd'T'HH:mm:ssZ` (`+0000`) and
//! parses `expires` with the same Java pattern; both live here so that the
//! simulator needs no date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `2021-10-04T09:24:38+0000`, as in every `created` field.
pub fn format_ms(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+0000",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses an `expires` value the way Java's `SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ssZ")`
/// accepts it: an RFC 822 offset (`+0000`), or the general form (`+00:00`, `Z`
/// is not accepted by Java and is not accepted here). Returns epoch seconds.
pub fn parse_expires(value: &str) -> Option<i64> {
    let b = value.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = value.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let zone = value.get(19..)?;
    let zone = zone.strip_prefix("GMT").unwrap_or(zone);
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let off_h: i64 = digits[..2].parse().ok()?;
    let off_m: i64 = digits[2..].parse().ok()?;
    let offset = sign * (off_h * 3600 + off_m * 60);
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_server() {
        assert_eq!(format_ms(1_633_339_478_000), "2021-10-04T09:24:38+0000");
    }

    #[test]
    fn parses_rfc822_offsets_and_round_trips() {
        assert_eq!(
            parse_expires("2021-10-04T09:24:38+0000"),
            Some(1_633_339_478)
        );
        assert_eq!(
            parse_expires("2021-10-04T11:24:38+0200"),
            Some(1_633_339_478)
        );
        assert_eq!(
            parse_expires("2021-10-04T11:24:38+02:00"),
            Some(1_633_339_478)
        );
    }

    #[test]
    fn rejects_what_java_rejects() {
        assert_eq!(parse_expires("2021-10-04T09:24:38Z"), None);
        assert_eq!(parse_expires("2021-10-04 09:24:38+0000"), None);
        assert_eq!(parse_expires("yesterday"), None);
    }
}
