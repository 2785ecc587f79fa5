//! How a failed command is reported: one line per cause, each saying something the lines
//! above did not. Library errors follow the `{path}: {source}` pattern with the source also
//! chained, so printing the chain as is would repeat each cause (`nope.csv: nope.csv: No such
//! file…`, then `nope.csv: No such file…`, then `No such file…`).

/// The lines to print for `error`: the outermost message, then each cause that adds to it. A
/// `{label}: {source}` message gives only its label, which prefixes the next line unless an
/// earlier line already says it.
pub(crate) fn lines(error: &anyhow::Error) -> Vec<String> {
    let messages: Vec<String> = error.chain().map(ToString::to_string).collect();
    let mut out: Vec<String> = Vec::new();
    let mut label: Option<String> = None;
    for (i, message) in messages.iter().enumerate() {
        let head = messages.get(i + 1).and_then(|next| message.strip_suffix(next.as_str()));
        let text = head.map_or(message.as_str(), |h| h.trim_end().trim_end_matches(':').trim_end());
        let said = |t: &str| out.iter().chain(&label).any(|line| line.contains(t));
        if text.is_empty() || said(text) {
            continue;
        }
        let text = match label.take() {
            Some(label) => format!("{label}: {text}"),
            None => text.to_owned(),
        };
        if head.is_some() { label = Some(text) } else { out.push(text) }
    }
    out.extend(label);
    out
}

/// Prints `error` on stderr: `Error: …`, then `  caused by: …` per cause.
#[allow(clippy::print_stderr)]
pub(crate) fn print(error: &anyhow::Error) {
    let mut lines = lines(error).into_iter();
    if let Some(first) = lines.next() {
        eprintln!("Error: {first}");
    }
    for cause in lines {
        eprintln!("  caused by: {cause}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct PathError {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    }

    fn enoent() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory")
    }

    #[test]
    fn repeated_context_is_printed_once() {
        let inner = PathError { path: "nope.csv".into(), source: Box::new(enoent()) };
        let outer = PathError { path: "nope.csv".into(), source: Box::new(inner) };
        let error = anyhow::Error::new(outer).context("training from nope.csv failed");
        assert_eq!(lines(&error), ["training from nope.csv failed", "No such file or directory"]);
    }

    #[test]
    fn distinct_causes_are_all_kept() {
        let error = anyhow::Error::new(enoent()).context("cannot read t.csv").context("cannot load model m");
        assert_eq!(lines(&error), ["cannot load model m", "cannot read t.csv", "No such file or directory"]);
        let field =
            PathError { path: "d.csv".into(), source: "line 10, column QUANTITY: \"x\" is not a number".into() };
        assert_eq!(lines(&anyhow::Error::new(field)), ["d.csv: line 10, column QUANTITY: \"x\" is not a number"]);
        let twice = PathError {
            path: "t.csv".into(),
            source: Box::new(PathError { path: "t.csv".into(), source: "line 3: bad".into() }),
        };
        assert_eq!(lines(&anyhow::Error::new(twice)), ["t.csv: line 3: bad"]);
    }
}
