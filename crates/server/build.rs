//! The build metadata `/version` shows: `GIT_COMMIT`, `GIT_BRANCH` and `BUILD_DATE` from the
//! environment when set (the image build passes them as build args, having no `.git`), else
//! from the git checkout being built (the same values `scripts/build-push.sh` computes: a
//! 12-digit commit, the branch, the commit's time in UTC, so a rebuild is reproducible), else
//! `unknown`.

use std::process::Command;

/// The trimmed output of `git args` run in this crate's directory (times in UTC), when git succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).env("TZ", "UTC").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// What the checkout says for `var`, the way `scripts/build-push.sh` computes it.
fn from_checkout(var: &str) -> Option<String> {
    match var {
        "GIT_COMMIT" => git(&["rev-parse", "--short=12", "HEAD"]),
        "GIT_BRANCH" => git(&["rev-parse", "--abbrev-ref", "HEAD"]).map(|branch| {
            branch.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect()
        }),
        _ => git(&["log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ"]).filter(|d| d.ends_with('Z')),
    }
}

fn main() {
    for var in ["GIT_COMMIT", "GIT_BRANCH", "BUILD_DATE"] {
        println!("cargo:rerun-if-env-changed={var}");
        let value = std::env::var(var).ok().filter(|v| !v.is_empty()).or_else(|| from_checkout(var));
        println!("cargo:rustc-env={var}={}", value.as_deref().unwrap_or("unknown"));
    }
    // A new commit or branch changes the values: rerun when HEAD or the ref it names moves.
    for path in ["HEAD", "packed-refs"]
        .into_iter()
        .map(str::to_owned)
        .chain(git(&["symbolic-ref", "-q", "HEAD"]))
        .filter_map(|p| git(&["rev-parse", "--git-path", &p]))
        // A missing file would make cargo rerun this on every build.
        .filter(|path| std::path::Path::new(path).exists())
    {
        println!("cargo:rerun-if-changed={path}");
    }
}
