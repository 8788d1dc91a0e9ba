//! "Did you mean ...?" suggestions for misspelled names and keys.
//!
//! The names compared can come from an untrusted Boxfile, so the work is
//! bounded: names longer than [`MAX_NAME`] characters are never compared
//! (no real key or host name is that long), at most [`MAX_CANDIDATES`]
//! candidates are looked at, and the edit distance gives up as soon as it
//! exceeds what would count as a typo.

/// Longer names are not typos of a known name; they are skipped.
pub const MAX_NAME: usize = 64;

/// At most this many candidates are compared for one suggestion.
pub const MAX_CANDIDATES: usize = 1000;

/// The candidate closest to `given`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a, I>(given: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let given = lower_chars(given)?;
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates.into_iter().take(MAX_CANDIDATES) {
        let Some(cand) = lower_chars(c) else { continue };
        let mut limit = (cand.len().max(given.len()) / 3).max(1);
        if let Some((d, _)) = best {
            // Only a strictly closer candidate replaces the first best one.
            match d.checked_sub(1) {
                Some(closer) => limit = limit.min(closer),
                None => break,
            }
        }
        if let Some(d) = distance_within(&given, &cand, limit) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Whether `a` is `b` with two adjacent characters swapped (`zoen`, `zone`),
/// the commonest typo. Names longer than [`MAX_NAME`] never are.
pub fn is_transposition(a: &str, b: &str) -> bool {
    let (Some(a), Some(b)) = (chars(a), chars(b)) else {
        return false;
    };
    if a.len() != b.len() {
        return false;
    }
    let Some(i) = a.iter().zip(&b).position(|(x, y)| x != y) else {
        return false;
    };
    i + 1 < a.len() && a[i] == b[i + 1] && a[i + 1] == b[i] && a[i + 2..] == b[i + 2..]
}

/// Levenshtein distance in characters (unbounded: only for short, trusted text).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    distance_within(&a, &b, usize::MAX).unwrap_or(usize::MAX)
}

/// The Levenshtein distance when it is at most `limit`; `None` as soon as
/// it is certain to be larger.
fn distance_within(a: &[char], b: &[char], limit: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        // Every later row is at least this row's minimum.
        if row_min > limit {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|d| *d <= limit)
}

fn chars(s: &str) -> Option<Vec<char>> {
    // A byte count over the limit can still be few characters; count lazily.
    let v: Vec<char> = s.chars().take(MAX_NAME + 1).collect();
    (v.len() <= MAX_NAME).then_some(v)
}

fn lower_chars(s: &str) -> Option<Vec<char>> {
    let v: Vec<char> = s
        .chars()
        .take(MAX_NAME + 1)
        .flat_map(char::to_lowercase)
        .collect();
    (v.len() <= MAX_NAME).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let keys = ["memory", "cpus", "box", "user"];
        assert_eq!(did_you_mean("memroy", keys), Some("memory"));
        assert_eq!(did_you_mean("cpu", keys), Some("cpus"));
        assert_eq!(did_you_mean("zzzzzz", keys), None);
        assert_eq!(did_you_mean("MEMORY", keys), Some("memory"));
    }

    #[test]
    fn the_first_of_equally_close_candidates_wins() {
        assert_eq!(did_you_mean("ab", ["ac", "ad", "ab"]), Some("ab"));
        assert_eq!(did_you_mean("ab", ["ac", "ad"]), Some("ac"));
    }

    #[test]
    fn bounded_distance_agrees_with_the_full_one() {
        let words = [
            "", "a", "memory", "memroy", "mem", "kitten", "sitting", "zone", "zoen",
        ];
        for a in words {
            for b in words {
                let full = distance(a, b);
                let ac: Vec<char> = a.chars().collect();
                let bc: Vec<char> = b.chars().collect();
                for limit in 0..8 {
                    let want = (full <= limit).then_some(full);
                    assert_eq!(distance_within(&ac, &bc, limit), want, "{a} {b} {limit}");
                }
            }
        }
    }

    #[test]
    fn names_too_long_to_be_typos_are_not_compared() {
        let long = "x".repeat(MAX_NAME + 1);
        let long_too = format!("{}y", "x".repeat(MAX_NAME));
        assert_eq!(did_you_mean(&long, [long_too.as_str()]), None);
        assert_eq!(did_you_mean("x", [long.as_str()]), None);
        assert!(!is_transposition(&long, &long_too));
        // A huge pair finishes at once instead of filling a 10^10-cell table.
        let a = "a".repeat(100_000);
        let b = "b".repeat(100_000);
        assert_eq!(did_you_mean(&a, [b.as_str()]), None);
    }

    #[test]
    fn swapped_adjacent_letters_are_a_transposition() {
        assert!(is_transposition("zoen", "zone"));
        assert!(is_transposition("wbe", "web"));
        assert!(!is_transposition("web", "web"));
        assert!(!is_transposition("abc", "cba"));
        assert!(!is_transposition("abcd", "badc"));
    }
}
