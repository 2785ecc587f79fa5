//! Rebuilds when the build metadata shown by `/version` changes.

fn main() {
    for var in ["GIT_COMMIT", "GIT_BRANCH", "BUILD_DATE"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
}
