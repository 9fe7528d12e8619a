//! Numeric UTC offsets, as HTTP dates (`+0200`) and ISO 8601 times (`+02:00`) spell
//! them: people and servers write times in their own zone, and a time is the instant
//! it names, whatever the zone.

use std::time::{Duration, SystemTime};

/// Seconds east of UTC of `+0200`, `-05:30`, `+00:00`; `None` for anything else (hours
/// past 23, minutes past 59, a single hour digit).
pub fn offset_secs(zone: &str) -> Option<i64> {
    if !zone.is_ascii() {
        return None;
    }
    let (sign, rest) = zone.split_at_checked(1)?;
    let (hours, minutes) = match rest.len() {
        4 => rest.split_at(2),
        5 if rest.as_bytes()[2] == b':' => (&rest[..2], &rest[3..]),
        _ => return None,
    };
    if !(hours.bytes().chain(minutes.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    let secs = hours * 3600 + minutes * 60;
    match sign {
        "+" => Some(secs),
        "-" => Some(-secs),
        _ => None,
    }
}

/// The instant of `local`, a time read as if written in UTC, written `east` seconds
/// east of UTC.
pub fn to_utc(local: SystemTime, east: i64) -> Option<SystemTime> {
    let offset = Duration::from_secs(east.unsigned_abs());
    if east >= 0 {
        local.checked_sub(offset)
    } else {
        local.checked_add(offset)
    }
}
