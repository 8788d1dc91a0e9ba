//! Wall-clock time in the formats CloudStack uses on the wire.
//!
//! The server writes timestamps as `yyyy-MM-dd'T'HH:mm:ssZ` (`+0000`) and
//! parses `expires` with the same Java pattern. The client's
//! `signing::format_expires` writes that format; the calendar is `time`'s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `2021-10-04T09:24:38+0000`, as in every `created` field.
pub fn format_ms(ms: u64) -> String {
    cloudstack::signing::format_expires(UNIX_EPOCH + Duration::from_millis(ms))
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
    let days = days_since_epoch(y, mo, d)?;
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

/// Days from 1970-01-01 to year `y`, month `m`, day `d`. Like Java's lenient
/// parser, a day past the month's end runs into the next month (Feb 31 is
/// March 2 or 3), so only the first of the month goes through the calendar.
fn days_since_epoch(y: i64, m: i64, d: i64) -> Option<i64> {
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let first = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, 1).ok()?;
    let epoch = time::Date::from_calendar_date(1970, time::Month::January, 1).ok()?;
    Some(i64::from(first.to_julian_day() - epoch.to_julian_day()) + d - 1)
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
    fn a_day_past_the_months_end_runs_into_the_next_month() {
        assert_eq!(
            parse_expires("2021-02-31T00:00:00+0000"),
            parse_expires("2021-03-03T00:00:00+0000")
        );
        assert_eq!(parse_expires("2000-02-29T00:00:00+0000"), Some(951_782_400));
    }

    #[test]
    fn rejects_what_java_rejects() {
        assert_eq!(parse_expires("2021-10-04T09:24:38Z"), None);
        assert_eq!(parse_expires("2021-10-04 09:24:38+0000"), None);
        assert_eq!(parse_expires("yesterday"), None);
    }
}
