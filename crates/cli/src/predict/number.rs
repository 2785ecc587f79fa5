//! Numbers in the CSV output written as Rust's `{}` writes them (the shortest digits that read
//! back as the same `f64`, never in exponent form) from `ryu`'s digits, which take a third of
//! the time (docs/decisions.md); the output is the one `{}` gives, byte for byte.

/// Appends `x` to `out` as `format!("{x}")` would.
pub(crate) fn push_f64(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() || may_tie(x) {
        out.extend_from_slice(x.to_string().as_bytes());
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(x).as_bytes();
    let Some(e) = text.iter().position(|&b| b == b'e') else {
        // `1.0` is written `1`.
        out.extend_from_slice(text.strip_suffix(b".0").unwrap_or(text));
        return;
    };
    // `d.ddde-7`: the digits, and where the decimal point goes among them.
    let (mantissa, exponent) = text.split_at(e);
    let exponent: i32 = std::str::from_utf8(&exponent[1..]).ok().and_then(|e| e.parse().ok()).unwrap_or_default();
    let (sign, mantissa) = match mantissa.strip_prefix(b"-") {
        Some(rest) => (&b"-"[..], rest),
        None => (&b""[..], mantissa),
    };
    let digits: Vec<u8> = mantissa.iter().copied().filter(|&b| b != b'.').collect();
    out.extend_from_slice(sign);
    let point = exponent + 1;
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
        out.extend_from_slice(&digits);
    } else if point as usize >= digits.len() {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(b'0', point as usize - digits.len()));
    } else {
        let (whole, fraction) = digits.split_at(point as usize);
        out.extend_from_slice(whole);
        out.push(b'.');
        out.extend_from_slice(fraction);
    }
}

/// Whether the shortest digits of `x` may be a tie between two (its exact value halfway
/// between them), where `ryu` rounds to even and `{}` away from zero. A tie needs an exact
/// decimal value of at most 18 digits: `m / 2^n` (`m` odd) has `n` decimals when below 1, at
/// least as many digits as `m` has bits; at or above 1, at least `n + 1` digits; an integer
/// below 1e13 is written exactly, in fewer than 16 digits.
fn may_tie(x: f64) -> bool {
    let x = x.abs();
    if x == 0.0 {
        return false;
    }
    if x >= 1e13 {
        return true;
    }
    let bits = x.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i32;
    let (mantissa, power) = match exponent {
        0 => (bits & ((1 << 52) - 1), -1074),
        _ => ((bits & ((1 << 52) - 1)) | (1 << 52), exponent - 1075),
    };
    let zeros = mantissa.trailing_zeros() as i32;
    let (odd, power) = (mantissa >> zeros, power + zeros);
    match power {
        0.. => false,
        _ if x >= 1.0 => -power <= 20,
        _ => 64 - odd.leading_zeros() <= 20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(x: f64) {
        let mut out = Vec::new();
        push_f64(&mut out, x);
        assert_eq!(String::from_utf8(out).expect("ascii"), format!("{x}"), "bits {:#x}", x.to_bits());
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let ties =
            [2f64.powi(-25), f64::from_bits(0x426d_0963_3a0f_f500), f64::from_bits(0x4317_9085_685d_83c9), 0.5, 0.1];
        for x in [0.0, -0.0, 1.0, -1.0, 1e-7, 1.5e-7, -2.5e-12, 1e21, 1.25e22, 123_456.0, 1e15, 1e16, 0.3] {
            check(x);
        }
        for x in
            ties.into_iter().chain([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE, f64::MAX, 5e-324])
        {
            check(x);
        }
        // Every kind of double: random bit patterns, probabilities, small and large amounts,
        // and short binary fractions (where ties are).
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..300_000 {
            let bits = next();
            check(f64::from_bits(bits));
            let unit = (bits >> 11) as f64 / (1u64 << 53) as f64;
            for x in [unit, unit * 1e-9, unit * 1e6, unit * 2e13, (unit * 1e4).round() / 100.0] {
                check(x);
            }
            let (m, n) = ((bits >> 40) as f64, (bits % 60) as i32);
            check(m * 2f64.powi(-n));
            check((bits >> 20) as f64 * 2f64.powi(-((bits % 24) as i32)));
        }
    }
}
