//! Times `gbdt::train` on a large generated table: by default 1,000,000 × 50 numeric features
//! with 10% missing values, binary labels from a nonlinear function with noise, 100 rounds of
//! the logistic objective (learning rate 0.1, 31 leaves, depth 12, 20 rows per leaf).
//!
//! `cargo run --release -p retail-model --example train_large [rows] [features] [rounds]`

use std::time::Instant;

use retail_model::gbdt::{Dataset, FeatureKind, Labels, Objective, Params, train};
use retail_model::progress::Progress;
use retail_model::rng::Rng;

/// Prints the time of every tenth round.
struct RoundTimer {
    start: Instant,
}

impl Progress for RoundTimer {
    fn stage(&self, name: &str, total: u64) {
        eprintln!("{:>8.2}s {name} ({total})", self.start.elapsed().as_secs_f64());
    }
    fn advance(&self, _n: u64) {}
    fn message(&self, message: &str) {
        let round: usize = message.split(' ').nth(1).and_then(|r| r.parse().ok()).unwrap_or(0);
        if round.is_multiple_of(10) {
            eprintln!("{:>8.2}s {message}", self.start.elapsed().as_secs_f64());
        }
    }
}

/// `n` rows of `nf` features, each missing with probability 0.1, and their labels.
fn generate(n: usize, nf: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
    let mut rng = Rng::new(seed, 0, 0);
    let (mut rows, mut labels) = (Vec::with_capacity(n * nf), Vec::with_capacity(n));
    let mut row = vec![0.0; nf];
    for _ in 0..n {
        for x in row.iter_mut() {
            *x = if rng.chance(0.1) { f64::NAN } else { rng.normal() };
        }
        // Missing values count as 0.5 in the score, so where they go matters.
        let v = |f: usize| if row[f % nf].is_nan() { 0.5 } else { row[f % nf] };
        let score = (2.0 * v(0)).sin() + v(1) * v(2) - 0.5 * v(3) * v(3) + f64::from(u8::from(v(4) > 0.3))
            - 0.7 * v(5).abs()
            + 0.3 * v(6)
            + rng.normal();
        rows.extend_from_slice(&row);
        labels.push(u8::from(score > 0.0));
    }
    (rows, labels)
}

fn main() {
    let arg = |i: usize, default: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (n, nf, rounds) = (arg(1, 1_000_000), arg(2, 50), arg(3, 100));
    let start = Instant::now();
    let (tr, ty) = generate(n, nf, 1);
    let (vr, vy) = generate(n / 20, nf, 2);
    eprintln!("generated {n} + {} rows × {nf} in {:.2}s", n / 20, start.elapsed().as_secs_f64());
    let params = Params {
        learning_rate: 0.1,
        max_rounds: rounds,
        early_stopping_rounds: rounds,
        max_leaves: 31,
        max_depth: 12,
        min_data_in_leaf: 20,
        ..Params::default()
    };
    let kinds = vec![FeatureKind::Numeric; nf];
    let (train_set, valid_set) =
        (Dataset { rows: &tr, labels: Labels::Classes(&ty) }, Dataset { rows: &vr, labels: Labels::Classes(&vy) });
    let start = Instant::now();
    let timer = RoundTimer { start };
    let booster = match train(&params, &kinds, Objective::Logistic, train_set, valid_set, &timer) {
        Ok(booster) => booster,
        Err(e) => {
            eprintln!("train: {e}");
            std::process::exit(1);
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    let loss = booster.validation_loss.last().copied().unwrap_or(f64::NAN);
    eprintln!(
        "{n} rows × {nf} features, {} rounds: {seconds:.2}s total, {:.3}s per round, validation log loss {loss:.5}, {} threads",
        booster.rounds_run,
        seconds / booster.rounds_run.max(1) as f64,
        rayon::current_num_threads()
    );
}
