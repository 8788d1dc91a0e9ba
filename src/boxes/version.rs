//! Box versions: made from the clock when a source has none, and compared
//! the way people read them (`12.10` after `12.9`).

use std::cmp::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A version for a box whose source names none: `YYYYMMDD.HHMMSS` in UTC,
/// so each add or build is a new, later version.
pub fn from_clock(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}.{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Compares dot- or dash-separated versions part by part, numerically where
/// both parts are numbers.
pub fn compare(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> Vec<String> { s.split(['.', '-', '_']).map(str::to_string).collect() };
    let (pa, pb) = (split(a), split(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(nx), Ok(ny)) => nx.cmp(&ny),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_versions_are_utc_dates() {
        assert_eq!(from_clock(0), "19700101.000000");
        assert_eq!(from_clock(1_764_093_600), "20251125.180000");
        assert_eq!(from_clock(951_782_400), "20000229.000000");
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare("12.10", "12.9"), Ordering::Greater);
        assert_eq!(compare("1.0", "1.0.1"), Ordering::Less);
        assert_eq!(
            compare("20250101.000000", "20241231.235959"),
            Ordering::Greater
        );
        assert_eq!(compare("0", "0"), Ordering::Equal);
    }
}
