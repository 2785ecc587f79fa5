//! The last source of AWS credentials. With no keys, web identity, container credentials or
//! profile keys configured, the S3 client falls back to the instance metadata service; off EC2
//! that fails with an opaque `Generic S3 error … 403` from 169.254.169.254. This provider says
//! instead that no credentials were found and which sources were tried, and skips instance
//! metadata when `AWS_EC2_METADATA_DISABLED=true` (as the AWS SDKs and CLI do).

use std::sync::Arc;

use object_store::CredentialProvider;
use object_store::aws::{AwsCredential, AwsCredentialProvider};

/// Environment variables that name credentials for the S3 client itself.
const ENV_SOURCES: [&str; 5] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// Whether the environment names a credential source other than instance metadata.
pub(crate) fn env_has_credentials() -> bool {
    ENV_SOURCES.iter().any(|v| std::env::var_os(v).is_some())
}

/// Whether `AWS_EC2_METADATA_DISABLED` turns instance metadata off.
fn metadata_disabled() -> bool {
    std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The text of an S3 client error without the client's `Generic S3 error:` wrapping.
pub(crate) fn reason(error: &object_store::Error) -> String {
    match error {
        object_store::Error::Generic { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// Instance metadata (unless disabled), then an error naming every source tried.
#[derive(Debug)]
pub(crate) struct LastResort {
    /// The instance metadata provider; `None` when `AWS_EC2_METADATA_DISABLED=true`.
    metadata: Option<AwsCredentialProvider>,
    /// The shared-files profile that was read.
    profile: String,
}

impl LastResort {
    /// Wraps `metadata`, the client's own instance metadata provider.
    pub(crate) fn new(metadata: AwsCredentialProvider, profile: String) -> Self {
        Self { metadata: (!metadata_disabled()).then_some(metadata), profile }
    }

    /// The error once every source has failed; `metadata` says how instance metadata did.
    fn none_found(&self, metadata: &str) -> object_store::Error {
        let tried = format!(
            "no AWS credentials found (tried AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_WEB_IDENTITY_TOKEN_FILE \
             with AWS_ROLE_ARN, AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI, static keys of profile {:?} in \
             ~/.aws/credentials, instance metadata: {metadata})",
            self.profile
        );
        object_store::Error::Generic { store: "S3", source: tried.into() }
    }
}

#[async_trait::async_trait]
impl CredentialProvider for LastResort {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let Some(metadata) = &self.metadata else {
            return Err(self.none_found("off, AWS_EC2_METADATA_DISABLED=true"));
        };
        match metadata.get_credential().await {
            Ok(credential) => Ok(credential),
            Err(error) => Err(self.none_found(&reason(&error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_drops_the_client_wrapping() {
        let generic = object_store::Error::Generic { store: "S3", source: "no AWS credentials found".into() };
        assert_eq!(reason(&generic), "no AWS credentials found");
    }
}
