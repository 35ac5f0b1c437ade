//! Numbers of seconds given by users (options, environment variables, configuration
//! keys) turned into [`Duration`]s that every later `Instant`/`Duration` computation can
//! use without overflowing: anything above [`LONGEST`] (a year, "never" for every wait
//! mfenv has) is taken as [`LONGEST`].

use std::time::Duration;

/// The longest wait or delay mfenv uses; larger numbers of seconds are clamped to it.
pub const LONGEST: Duration = Duration::from_secs(365 * 86_400);

/// `seconds` as a duration, at most [`LONGEST`].
pub fn from_u64(seconds: u64) -> Duration {
    Duration::from_secs(seconds).min(LONGEST)
}

/// `seconds` (decimals allowed) as a duration, at most [`LONGEST`]; `None` for a
/// negative number or not-a-number.
pub fn from_f64(seconds: f64) -> Option<Duration> {
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    Some(if seconds >= LONGEST.as_secs_f64() {
        LONGEST
    } else {
        Duration::from_secs_f64(seconds)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn huge_numbers_are_clamped_and_stay_usable_with_instants() {
        assert_eq!(from_u64(u64::MAX), LONGEST);
        assert_eq!(from_u64(5), Duration::from_secs(5));
        for huge in [1e20, 1e300, f64::INFINITY, f64::MAX] {
            assert_eq!(from_f64(huge), Some(LONGEST));
        }
        let _ = Instant::now() + from_u64(u64::MAX) + from_f64(1e300).unwrap();
    }

    #[test]
    fn negative_and_nan_are_refused() {
        assert_eq!(from_f64(-1.0), None);
        assert_eq!(from_f64(f64::NAN), None);
        assert_eq!(from_f64(0.5), Some(Duration::from_millis(500)));
        assert_eq!(from_f64(0.0), Some(Duration::ZERO));
    }
}
