//! CSV text without quotes, split directly: what the `csv` reader makes of it (records end at
//! `\n`, `\r\n` or a lone `\r`, blank ones are skipped, fields end at commas), a quarter to a
//! third of the reader's time (docs/decisions.md, "Offline scoring speed"). Transaction blocks
//! and the scoring module's CSV bodies are split here when they hold no `"`.

/// Calls `each` with every record of `bytes` (which must hold no `"`): the line breaks before
/// it, its bytes and where its commas are. Stops when `each` returns false; returns the line
/// breaks read (all of them unless stopped).
pub fn records<'a>(bytes: &'a [u8], mut each: impl FnMut(u64, &'a [u8], &[usize]) -> bool) -> u64 {
    let mut commas = Vec::new();
    let (mut at, mut breaks) = (0, 0);
    while at < bytes.len() {
        let end = memchr::memchr2(b'\n', b'\r', &bytes[at..]).map_or(bytes.len(), |n| at + n);
        let record = &bytes[at..end];
        if !record.is_empty() {
            commas.clear();
            find_commas(record, &mut commas);
            if !each(breaks, record, &commas) {
                return breaks;
            }
        }
        if end < bytes.len() {
            breaks += 1;
        }
        at = end + if bytes[end..].starts_with(b"\r\n") { 2 } else { 1 };
    }
    breaks
}

/// Field `i` of `record` whose commas are at `commas` (empty past the last field).
pub fn field<'r>(record: &'r [u8], commas: &[usize], i: usize) -> &'r [u8] {
    let start = if i == 0 { 0 } else { commas.get(i - 1).map_or(record.len(), |c| c + 1) };
    record.get(start..commas.get(i).copied().unwrap_or(record.len())).unwrap_or_default()
}

/// Appends where the commas of `record` are to `commas`, eight bytes at a time: commas are a
/// few bytes apart, too close for a search per comma to pay (docs/decisions.md).
fn find_commas(record: &[u8], commas: &mut Vec<usize>) {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let words = record.chunks_exact(8);
    let rest = words.remainder();
    for (w, word) in words.enumerate() {
        let Ok(bytes) = <[u8; 8]>::try_from(word) else { continue };
        let x = u64::from_le_bytes(bytes) ^ 0x2c2c_2c2c_2c2c_2c2c;
        // The high bit of each byte of `x` that is zero (a comma): exact, no carry between bytes.
        let mut found = !(((x & LOW) + LOW) | x | LOW);
        while found != 0 {
            commas.push(w * 8 + found.trailing_zeros() as usize / 8);
            found &= found - 1;
        }
    }
    let base = record.len() - rest.len();
    commas.extend(rest.iter().enumerate().filter_map(|(i, &b)| (b == b',').then_some(base + i)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_are_found_wherever_they_are() {
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        for len in 0..200 {
            let record: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    [b',', b'a', b'\0', b'\xac', b'-', b'+', b'\x2d'][(state % 7) as usize]
                })
                .collect();
            let mut found = Vec::new();
            find_commas(&record, &mut found);
            let expected: Vec<usize> = (0..record.len()).filter(|&i| record[i] == b',').collect();
            assert_eq!(found, expected, "{record:?}");
        }
    }

    #[test]
    #[cfg(feature = "train")]
    fn records_end_where_the_csv_reader_ends_them() {
        let text = b"a,b\r\n\r\nc\rd,,e\n\n f \r\n";
        let mut seen = Vec::new();
        let breaks = records(text, |breaks, record, commas| {
            let fields: Vec<&[u8]> = (0..=commas.len()).map(|i| field(record, commas, i)).collect();
            seen.push((breaks, fields));
            true
        });
        let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(&text[..]);
        let expected: Vec<Vec<Vec<u8>>> =
            reader.byte_records().map(|r| r.expect("csv").iter().map(<[u8]>::to_vec).collect()).collect();
        let got: Vec<Vec<Vec<u8>>> = seen.iter().map(|(_, f)| f.iter().map(|c| c.to_vec()).collect()).collect();
        assert_eq!(got, expected);
        assert_eq!(seen.iter().map(|(b, _)| *b).collect::<Vec<_>>(), [0, 2, 3, 5]);
        assert_eq!(breaks, 6);
        assert_eq!(records(text, |_, _, _| false), 0, "stops at the first record");
    }
}
