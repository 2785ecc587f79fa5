//! The cards of the shipped models: numbers without float noise and with thousands separators,
//! calibration counts, the importance chart, and the committed files as this code renders them.

use super::*;
use crate::artifact::{Artifact, ModelMetrics};

/// Decimals with float noise (`404.03999999999996`, `0.30000000000000004`) in `text`.
pub(crate) fn float_noise(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for (i, _) in text.match_indices('.') {
        if i == 0 || !bytes[i - 1].is_ascii_digit() {
            continue;
        }
        let fraction: String = text[i + 1..].chars().take_while(char::is_ascii_digit).collect();
        if fraction.contains("99999") || fraction.contains("00000") {
            let start = text[..i].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |p| p + 1);
            found.push(text[start..i + 1 + fraction.len()].to_owned());
        }
    }
    found
}

/// Numbers of five or more digits written without thousands separators (hex digests, which
/// sit next to letters, and `sha256:` lines aside).
pub(crate) fn unseparated(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in markdown.lines().filter(|l| !l.contains("sha256:")) {
        let mut run = String::new();
        let mut previous = ' ';
        for c in line.chars().chain([' ']) {
            if c.is_ascii_digit() {
                run.push(c);
                continue;
            }
            let glued = |c: char| c.is_ascii_alphanumeric() || c == ',' || c == '.';
            if run.len() >= 5 && !glued(previous) && !glued(c) {
                found.push(run.clone());
            }
            if run.is_empty() {
                previous = c;
            } else {
                run.clear();
                previous = c;
            }
        }
    }
    found
}

fn shipped(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn default_card() -> (Artifact, Vec<(&'static str, String)>) {
    let artifact = Artifact::embedded_default().expect("embedded model");
    let ModelMetrics::Classification(metrics) = &artifact.manifest.metrics else { panic!("a classifier") };
    let input = CardInput::for_training(&artifact.manifest, metrics, artifact.importance.as_ref());
    let files =
        render(&input).into_iter().map(|(name, bytes)| (name, String::from_utf8(bytes).expect("utf-8"))).collect();
    (artifact, files)
}

#[test]
fn issue18_the_default_models_card_prints_no_float_noise_and_separates_thousands() {
    let (artifact, files) = default_card();
    for (name, text) in files.iter().map(|(n, t)| (*n, t.clone())).chain([(CARD_FILE, shipped(CARD_FILE))]) {
        assert_eq!(float_noise(&text), Vec::<String>::new(), "{name}");
    }
    let card = &files[0].1;
    assert_eq!(unseparated(card), Vec::<String>::new(), "{card}");
    let t = &artifact.manifest.training.rows;
    assert!(card.contains(&format!("{} / {} / {}", rows(t.train), rows(t.validation), rows(t.test))), "{card}");
    assert!(card.contains(&format!("{} lines", count(artifact.manifest.provenance.data_lines))), "{card}");
    assert!(card.contains(" to 404.04\n"), "the SPEND range without float noise: {card}");
    assert_eq!(unseparated(&shipped(CARD_FILE)), Vec::<String>::new(), "the committed card");
}

#[test]
fn issue18_calibration_counts_sum_to_the_evaluation_rows() {
    let (artifact, files) = default_card();
    let card = &files[0].1;
    let table =
        card.split("| confidence | baskets | mean confidence | share correct |").nth(1).expect("calibration table");
    let counts: Vec<u64> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(2).expect("count").trim().replace(',', "").parse().expect("a count"))
        .collect();
    assert!(counts.len() >= 5, "{table}");
    assert_eq!(counts.iter().sum::<u64>(), artifact.manifest.training.rows.test as u64);
    let svg = &files.iter().find(|(n, _)| *n == CALIBRATION_FILE).expect("calibration chart").1;
    for n in counts {
        assert!(svg.contains(&format!(">{}</text>", count(n))), "{n} labelled in the chart");
    }
}

#[test]
fn issue17_the_default_models_card_has_its_importance_chart_most_important_first() {
    let (artifact, files) = default_card();
    let importance = artifact.importance.as_ref().expect("the shipped model records importance");
    let svg = &files.iter().find(|(n, _)| *n == IMPORTANCE_FILE).expect("importance chart").1;
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>") && svg.matches("<svg").count() == 1);
    let positions: Vec<usize> = importance
        .fields
        .iter()
        .map(|f| svg.find(&format!(">{}</text>", f.field)).unwrap_or_else(|| panic!("{} in the chart", f.field)))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "ordered as the importance: {positions:?}");
    let card = &files[0].1;
    assert!(card.contains("![Feature importance](importance.svg)") && card.contains("mean absolute SHAP value"));
    for class in ["LA", "MM", "UM"] {
        assert!(svg.contains(&format!(">{class}</text>")), "legend names {class}");
    }
}

#[test]
fn issue17_issue18_the_committed_card_is_what_this_code_renders() {
    let (artifact, files) = default_card();
    for (name, text) in &files {
        assert!(
            *text == shipped(name),
            "models/default/{name} differs from what the card code renders: rerun scripts/train-default-model.sh"
        );
        assert!(artifact.manifest.files.contains_key(*name), "{name} listed in the manifest");
    }
}

#[test]
fn issue17_a_card_without_importance_says_so_and_has_no_chart() {
    let (artifact, _) = default_card();
    let ModelMetrics::Classification(metrics) = &artifact.manifest.metrics else { panic!("a classifier") };
    let files = render(&CardInput::for_training(&artifact.manifest, metrics, None));
    assert!(files.iter().all(|(n, _)| *n != IMPORTANCE_FILE));
    let card = String::from_utf8(files[0].1.clone()).expect("utf-8");
    assert!(card.contains("records no feature importance") && !card.contains("importance.svg"), "{card}");
}
