//! How the cards print numbers: counts with thousands separators (`1,234,567`), decimals
//! rounded to a fixed number of places (never the float noise of `{}`, `404.03999999999996`),
//! and percentages.

/// `n` with thousands separators: `1,857,822`.
pub fn count(n: impl Into<u64>) -> String {
    group(&n.into().to_string())
}

/// [`count`] of a `usize`.
pub fn rows(n: usize) -> String {
    count(n as u64)
}

/// `x` rounded to `places` decimals, the integer part with thousands separators:
/// `12,345.68`; `n/a` when not finite. A value that rounds to zero has no minus sign.
pub fn fixed(x: f64, places: usize) -> String {
    if !x.is_finite() {
        return "n/a".to_owned();
    }
    let text = format!("{:.places$}", x.abs());
    let negative = x < 0.0 && text.bytes().any(|b| matches!(b, b'1'..=b'9'));
    let (int, frac) = text.split_once('.').map_or((text.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::with_capacity(text.len() + 4);
    if negative {
        out.push('-');
    }
    out.push_str(&group(int));
    if let Some(frac) = frac {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// `x` with at most `places` decimals and no trailing zeros: `404.04`, `76`, `0.29`.
pub fn short(x: f64, places: usize) -> String {
    let text = fixed(x, places);
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_owned() } else { text }
}

/// `x` to `digits` significant digits (at most 10 decimals), without trailing zeros: a raw
/// training bound such as `404.03999999999996` prints as `404.04`, `0.0012` stays `0.0012`.
pub fn sig(x: f64, digits: i32) -> String {
    if x == 0.0 || !x.is_finite() {
        return short(x, 0);
    }
    let magnitude = x.abs().log10().floor() as i32;
    let places = (digits - 1 - magnitude).clamp(0, 10);
    short(x, places as usize)
}

/// `x` (a share) as a percentage with two decimals: `71.78%`.
pub fn pct(x: f64) -> String {
    format!("{}%", fixed(100.0 * x, 2))
}

/// [`pct`] with a sign: `+1.15%`, `-0.30%` (no sign when it rounds to zero).
pub fn signed_pct(x: f64) -> String {
    signed(100.0 * x, 2) + "%"
}

/// [`fixed`] with a sign: `+0.062`, `-0.050` (`0.000` when it rounds to zero).
pub fn signed(x: f64, places: usize) -> String {
    let text = fixed(x, places);
    let zero = !text.bytes().any(|b| matches!(b, b'1'..=b'9'));
    if zero || text.starts_with('-') || text == "n/a" { text } else { format!("+{text}") }
}

/// Digits with a comma every three from the right.
fn group(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue18_numbers_have_separators_and_no_float_noise() {
        assert_eq!(count(1_857_822u64), "1,857,822");
        assert_eq!(count(999u64), "999");
        assert_eq!(count(1000u64), "1,000");
        assert_eq!(rows(0), "0");
        assert_eq!(fixed(428.259_999_999_999_93, 2), "428.26");
        assert_eq!(fixed(1_234_567.891, 1), "1,234,567.9");
        assert_eq!(fixed(-1234.5, 0), "-1,234");
        assert_eq!(fixed(-0.0004, 3), "0.000");
        assert_eq!(fixed(f64::NAN, 2), "n/a");
        assert_eq!(short(404.039_999_999_999_96, 2), "404.04");
        assert_eq!(short(76.0, 2), "76");
        assert_eq!(short(0.29, 2), "0.29");
        assert_eq!(short(12_000.5, 2), "12,000.5");
        assert_eq!(sig(404.039_999_999_999_96, 6), "404.04");
        assert_eq!(sig(0.001_2, 6), "0.0012");
        assert_eq!(sig(0.300_000_000_000_000_04, 6), "0.3");
        assert_eq!(sig(1_857_822.25, 6), "1,857,822");
        assert_eq!(sig(0.0, 6), "0");
        assert_eq!(pct(0.717_8), "71.78%");
        assert_eq!(signed_pct(-0.003), "-0.30%");
        assert_eq!(signed_pct(0.0115), "+1.15%");
        assert_eq!(signed_pct(-0.000_01), "0.00%");
        assert_eq!(signed(0.062, 3), "+0.062");
        assert_eq!(signed(-0.05, 3), "-0.050");
    }
}
