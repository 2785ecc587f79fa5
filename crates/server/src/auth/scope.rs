//! Scopes: what a credential may do. Each protected route group needs one scope; a credential
//! carries a set of them (a token's `scope` / `scp` claim, an API key's `scopes=`).

use std::fmt;

/// A permission a route group needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Scoring: `/predict*`, `/batch-predict`, `/invocations`, v2 infer.
    Predict,
    /// Explanations (reserved for `?explain=true`).
    Explain,
    /// The served model: `/model/*`, v2 model metadata.
    ModelRead,
    /// Prometheus metrics: `/metrics` (unless `METRICS_PUBLIC`).
    MetricsRead,
}

impl Scope {
    /// Every scope, in documentation order.
    pub const ALL: [Self; 4] = [Self::Predict, Self::Explain, Self::ModelRead, Self::MetricsRead];

    /// The scope's name in tokens, key files and `WWW-Authenticate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Predict => "predict",
            Self::Explain => "explain",
            Self::ModelRead => "model:read",
            Self::MetricsRead => "metrics:read",
        }
    }

    /// The scope named `word`. A resource-server prefix is allowed (`retail-api/predict`), as
    /// Amazon Cognito writes custom scopes `<resource server>/<scope>`.
    pub fn parse(word: &str) -> Option<Self> {
        let name = word.rsplit_once('/').map_or(word, |(_, name)| name);
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Marks a request to a `predict` route whose credential lacks the `explain` scope: it may be
/// scored but not explained. A zero-sized value, so marking allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WithoutExplain;

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// No scope.
    pub const NONE: Self = Self(0);

    /// Whether `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Adds `scope`.
    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The known scopes among `words`; others (another API's scopes) are ignored.
    pub fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        let mut scopes = Self::NONE;
        words.into_iter().filter_map(Scope::parse).for_each(|s| scopes.insert(s));
        scopes
    }

    /// Scopes from configuration (space- or comma-separated); an unknown name is an error.
    pub fn parse_list(list: &str) -> Result<Self, String> {
        let mut scopes = Self::NONE;
        for word in list.split([' ', ',']).filter(|w| !w.is_empty()) {
            let scope = Scope::ALL.into_iter().find(|s| s.as_str() == word).ok_or_else(|| {
                let known: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown scope {word:?} (known: {})", known.join(", "))
            })?;
            scopes.insert(scope);
        }
        Ok(scopes)
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for scope in Scope::ALL.into_iter().filter(|s| self.contains(*s)) {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_from_tokens_and_configuration() {
        let s = Scopes::from_words("predict other:thing retail-api/model:read".split(' '));
        assert!(s.contains(Scope::Predict) && s.contains(Scope::ModelRead));
        assert!(!s.contains(Scope::MetricsRead));
        assert_eq!(s.to_string(), "predict model:read");
        assert_eq!(Scopes::parse_list("predict,metrics:read").expect("list").to_string(), "predict metrics:read");
        assert!(Scopes::parse_list("").expect("empty").is_empty());
        assert!(Scopes::parse_list("predict admin").is_err());
    }
}
