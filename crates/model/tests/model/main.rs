//! Integration tests of retail-model (one test binary).

mod artifact;
mod explain;
mod forecast;
mod hostile;
mod onnx;
mod onnx_tabular;
mod parity;
mod tabular;

/// JSON text with every number outside strings replaced by `#`.
pub fn numbers_masked(text: &[u8]) -> String {
    let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
    for &b in text {
        let c = char::from(b);
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if c == '"' {
            in_string = true;
        } else if c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-') {
            if !out.ends_with('#') {
                out.push('#');
            }
            continue;
        }
        out.push(c);
    }
    out
}
