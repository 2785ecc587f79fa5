//! Input and output formats of `retail-api predict`: named by `--format` / `--output-format`,
//! else found from the input's extension and first line, or the output's extension.

use clap::ValueEnum;

/// What an input file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum InputFormat {
    /// Transaction lines (the dunnhumby columns, `BASKET_ID` among them), scored per basket; the
    /// label is optional (needs the full build: the serving image leaves transaction reading out).
    Transactions,
    /// CSV rows of the model's record columns: a basket's 8 flat-record fields, a sales
    /// forecast's `store_id,product_id,date,price,promotion`, a tabular model's columns.
    Flat,
    /// JSON lines, one `/predict` body per line.
    Jsonl,
}

/// What the output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// A header, then `source,line,id,prediction,[P_class…],warnings,error` per input record.
    Csv,
    /// One JSON object per input record: `source`, `line`, (`id`), then the API's answer.
    Jsonl,
}

impl OutputFormat {
    /// The file extension it is written with.
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }

    /// The format a file name's extension names, if any.
    pub(crate) fn of_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Self::Csv)
        } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Some(Self::Jsonl)
        } else {
            None
        }
    }
}

impl InputFormat {
    /// The format of the input `name` whose first line is `first`: JSON lines by extension or
    /// a first line opening an object; transactions when the header has a `BASKET_ID` column;
    /// otherwise CSV rows of the model's fields.
    pub(crate) fn detect(name: &str, first: &[u8]) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") || first.trim_ascii_start().starts_with(b"{") {
            return Self::Jsonl;
        }
        let header = header_cells(first);
        if header.iter().any(|h| h == "BASKET_ID") { Self::Transactions } else { Self::Flat }
    }

    /// The output format that fits this input when none is asked for.
    pub(crate) fn natural_output(self) -> OutputFormat {
        match self {
            Self::Jsonl => OutputFormat::Jsonl,
            Self::Transactions | Self::Flat => OutputFormat::Csv,
        }
    }
}

/// The cells of a CSV first line, trimmed and unquoted.
pub(crate) fn header_cells(line: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(line);
    text.trim_end_matches(['\r', '\n']).split(',').map(|c| c.trim().trim_matches('"').to_owned()).collect()
}

/// A CSV cell as the `csv` crate writes it by default: quoted when it holds a comma, a quote or
/// a line break, its quotes doubled. Written here: the crate's writer, field by field, took a
/// tenth of offline scoring's time (docs/decisions.md, "Offline scoring speed").
pub(crate) fn cell(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !text.iter().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut quoted = Vec::with_capacity(text.len() + 2);
    quoted.push(b'"');
    for &b in text {
        if b == b'"' {
            quoted.push(b'"');
        }
        quoted.push(b);
    }
    quoted.push(b'"');
    std::borrow::Cow::Owned(quoted)
}

#[cfg(all(test, feature = "train"))]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_extension_or_header() {
        let dunnhumby = retail_model::synth::HEADER.join(",");
        assert_eq!(InputFormat::detect("x.csv", dunnhumby.as_bytes()), InputFormat::Transactions);
        let unlabelled = retail_model::data::SCORING_COLUMNS.join(",");
        assert_eq!(InputFormat::detect("x", unlabelled.as_bytes()), InputFormat::Transactions);
        let flat = "BASKET_SIZE,BASKET_TYPE,STORE_REGION,STORE_FORMAT,SPEND,QUANTITY,PROD_CODE_20,PROD_CODE_30";
        assert_eq!(InputFormat::detect("x.csv", flat.as_bytes()), InputFormat::Flat);
        assert_eq!(InputFormat::detect("x.csv", b"M,MIXED,LONDON,LS,1,1,FOOD,FRESH"), InputFormat::Flat);
        assert_eq!(InputFormat::detect("x.jsonl", b"garbage"), InputFormat::Jsonl);
        assert_eq!(InputFormat::detect("x.txt", b"  {\"SPEND\": 1}"), InputFormat::Jsonl);
        assert_eq!(OutputFormat::of_name("s3://b/o.NDJSON"), Some(OutputFormat::Jsonl));
        assert_eq!(OutputFormat::of_name("o.csv"), Some(OutputFormat::Csv));
        assert_eq!(OutputFormat::of_name("o/"), None);
    }
}

#[cfg(test)]
mod cells {
    use super::cell;

    #[test]
    fn cells_are_quoted_as_the_csv_crate_quotes_them() {
        let texts = [
            "",
            "LA",
            "a,b",
            "say \"hi\"",
            "\"",
            "\"\"",
            "line\nbreak",
            "cr\rreturn",
            "crlf\r\n",
            ",",
            " spaced ",
            "tab\there",
            "semi; colon",
            "ünïcödé, \"quoted\"",
            "'single'",
            "#hash",
            "\\back\\slash",
        ];
        for text in texts {
            let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
            writer.write_record([text, "x"]).expect("write");
            let expected = writer.into_inner().expect("flush");
            let mut ours = cell(text.as_bytes()).into_owned();
            ours.extend_from_slice(b",x\n");
            assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&expected), "{text:?}");
        }
    }
}
