//! The SageMaker Model Registry: model package groups whose versions point at an S3
//! `model.tar.gz` and carry an approval status, metrics and metadata.
//!
//! Only five JSON operations are needed (`ListModelPackages`, `DescribeModelPackage`,
//! `UpdateModelPackage`, `CreateModelPackageGroup`, `CreateModelPackage`), so instead of the
//! SageMaker SDK (an 8-minute, 5 GB build) the calls are signed with SigV4 using `object_store`'s
//! signer, HTTP client and standard AWS credential chain (environment, IRSA web identity,
//! container credentials, instance metadata) — the same chain that reads the model from S3.
//! The endpoint is `AWS_ENDPOINT_URL_SAGEMAKER`, else `AWS_ENDPOINT_URL`, else the regional
//! `https://api.sagemaker.<region>.amazonaws.com`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{Method, Request, header};
use object_store::ClientOptions;
use object_store::aws::{AmazonS3ConfigKey, AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::{S3Url, env_endpoint};

/// The approval status of a servable package.
pub const APPROVED: &str = "Approved";

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The client could not be configured (region, credentials, endpoint).
    #[error("SageMaker client: {0}")]
    Config(String),
    /// The endpoint could not be reached.
    #[error("SageMaker {operation}: {reason}")]
    Http {
        /// Operation.
        operation: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// SageMaker answered with an error.
    #[error("SageMaker {operation}: {code}: {message}")]
    Api {
        /// Operation.
        operation: &'static str,
        /// Error code, e.g. `ValidationException`.
        code: String,
        /// Its message.
        message: String,
    },
    /// No package in the group qualifies.
    #[error("model package group {group}: {reason}")]
    NotFound {
        /// Group.
        group: String,
        /// What is missing.
        reason: String,
    },
    /// A package exists but cannot be served.
    #[error("model package {arn}: {reason}")]
    Unusable {
        /// Package ARN.
        arn: String,
        /// Why.
        reason: String,
    },
}

/// One version in a package group, as listed.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PackageSummary {
    /// Package ARN.
    pub model_package_arn: String,
    /// Version number within the group.
    pub model_package_version: Option<u64>,
    /// `Approved`, `Rejected` or `PendingManualApproval`.
    pub model_approval_status: Option<String>,
    /// When it was registered (as SageMaker sends it).
    #[serde(default)]
    pub creation_time: Value,
}

/// A registered model version: where its artifact is and what the registry says about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Package {
    /// Package group.
    pub group: String,
    /// Package ARN.
    pub arn: String,
    /// Version number within the group.
    pub version: Option<u64>,
    /// Approval status when it was loaded.
    pub approval_status: String,
    /// When it was registered.
    pub creation_time: Value,
    /// `InferenceSpecification.Containers[0].ModelDataUrl`: the `model.tar.gz`.
    pub model_data_url: String,
    /// `ModelMetrics` as registered (references to metric documents in S3).
    pub model_metrics: Value,
    /// The model-quality statistics document that `ModelMetrics` points at, when readable.
    pub model_quality: Option<Value>,
    /// `CustomerMetadataProperties`.
    pub customer_metadata: BTreeMap<String, String>,
}

impl Package {
    /// The artifact's location.
    pub fn model_data(&self) -> Result<S3Url, RegistryError> {
        S3Url::parse(&self.model_data_url).map_err(|reason| RegistryError::Unusable { arn: self.arn.clone(), reason })
    }

    /// The S3 location of the model-quality statistics document, if registered.
    pub fn model_quality_url(&self) -> Option<S3Url> {
        let uri = self.model_metrics.pointer("/ModelQuality/Statistics/S3Uri")?.as_str()?;
        S3Url::parse(uri).ok()
    }
}

/// What `registry push` registers.
#[derive(Debug, Clone)]
pub struct NewPackage {
    /// Group (created if missing).
    pub group: String,
    /// Description of the version.
    pub description: String,
    /// Serving image recorded in the inference specification.
    pub image: String,
    /// `s3://…/model.tar.gz`.
    pub model_data_url: String,
    /// `s3://…` of the model-quality statistics JSON.
    pub statistics_url: String,
    /// Metadata (model version, checksum, headline metrics).
    pub customer_metadata: BTreeMap<String, String>,
    /// `Approved` or `PendingManualApproval`.
    pub approval_status: String,
}

/// A signed SageMaker JSON API client.
#[derive(Debug)]
pub struct Registry {
    client: HttpClient,
    credentials: AwsCredentialProvider,
    region: String,
    endpoint: String,
}

impl Registry {
    /// A client configured from the standard AWS environment.
    pub fn from_env() -> Result<Self, RegistryError> {
        let config = |e: object_store::Error| RegistryError::Config(e.to_string());
        // The S3 builder resolves the region and the credential chain; its bucket is not used.
        let builder = crate::store::builder("registry-credentials");
        let region = builder.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".to_owned());
        let credentials = builder.build().map_err(config)?.credentials().clone();
        let endpoint = std::env::var("AWS_ENDPOINT_URL_SAGEMAKER")
            .ok()
            .or_else(env_endpoint)
            .unwrap_or_else(|| format!("https://api.sagemaker.{region}.amazonaws.com"));
        let options = ClientOptions::new()
            .with_allow_http(endpoint.starts_with("http://"))
            .with_timeout(Duration::from_secs(30))
            .with_connect_timeout(Duration::from_secs(5));
        let client = ReqwestConnector::default().connect(&options).map_err(config)?;
        Ok(Self { client, credentials, region, endpoint: endpoint.trim_end_matches('/').to_owned() })
    }

    /// One signed call of the SageMaker JSON protocol.
    async fn call(&self, operation: &'static str, body: &Value) -> Result<Value, RegistryError> {
        let http = |reason: String| RegistryError::Http { operation, reason };
        let credential = self
            .credentials
            .get_credential()
            .await
            .map_err(|e| http(format!("credentials: {}", crate::credentials::reason(&e))))?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/", self.endpoint))
            .header(header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header("x-amz-target", format!("SageMaker.{operation}"))
            .body(HttpRequestBody::from(body.to_string()))
            .map_err(|e| http(e.to_string()))?;
        AwsAuthorizer::new(&credential, "sagemaker", &self.region)
            .try_authorize(&mut request, None)
            .map_err(|e| http(format!("signing: {e}")))?;
        let response = self.client.execute(request).await.map_err(|e| http(e.to_string()))?;
        let status = response.status();
        let bytes = response.into_body().bytes().await.map_err(|e| http(e.to_string()))?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let code = text("__type").map_or_else(|| status.to_string(), |t| t.rsplit('#').next().unwrap_or(&t).to_owned());
        let message = text("message")
            .or_else(|| text("Message"))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
        Err(RegistryError::Api { operation, code, message })
    }

    fn decode<T: serde::de::DeserializeOwned>(operation: &'static str, value: Value) -> Result<T, RegistryError> {
        serde_json::from_value(value)
            .map_err(|e| RegistryError::Http { operation, reason: format!("unexpected answer: {e}") })
    }

    /// One page of `group`'s versions, newest first, optionally only those with `status`.
    async fn page(
        &self,
        group: &str,
        status: Option<&str>,
        max_results: u32,
        token: Option<&str>,
    ) -> Result<(Vec<PackageSummary>, Option<String>), RegistryError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            #[serde(default)]
            model_package_summary_list: Vec<PackageSummary>,
            next_token: Option<String>,
        }
        let mut body = json!({"ModelPackageGroupName": group, "ModelPackageType": "Versioned",
            "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": max_results});
        if let Some(status) = status {
            body["ModelApprovalStatus"] = json!(status);
        }
        if let Some(token) = token {
            body["NextToken"] = json!(token);
        }
        let page: Page = Self::decode("ListModelPackages", self.call("ListModelPackages", &body).await?)?;
        Ok((page.model_package_summary_list, page.next_token.filter(|t| !t.is_empty())))
    }

    /// Every version of `group` (newest first), optionally only those with `status`.
    pub async fn list(&self, group: &str, status: Option<&str>) -> Result<Vec<PackageSummary>, RegistryError> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = self.page(group, status, 100, token.as_deref()).await?;
            all.extend(page);
            match next {
                Some(next) => token = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// The newest approved version of `group`.
    pub async fn latest_approved(&self, group: &str) -> Result<PackageSummary, RegistryError> {
        let (mut page, _) = self.page(group, Some(APPROVED), 1, None).await?;
        if page.is_empty() {
            return Err(RegistryError::NotFound { group: group.to_owned(), reason: "no approved version".to_owned() });
        }
        Ok(page.swap_remove(0))
    }

    /// The version numbered `version` in `group`.
    pub async fn find(&self, group: &str, version: u64) -> Result<PackageSummary, RegistryError> {
        self.list(group, None)
            .await?
            .into_iter()
            .find(|p| p.model_package_version == Some(version))
            .ok_or_else(|| RegistryError::NotFound { group: group.to_owned(), reason: format!("no version {version}") })
    }

    /// Full description of one package (by ARN).
    pub async fn describe(&self, group: &str, arn: &str) -> Result<Package, RegistryError> {
        let d = self.call("DescribeModelPackage", &json!({"ModelPackageName": arn})).await?;
        let model_data_url = d
            .pointer("/InferenceSpecification/Containers/0/ModelDataUrl")
            .and_then(Value::as_str)
            .ok_or_else(|| RegistryError::Unusable {
                arn: arn.to_owned(),
                reason: "no InferenceSpecification.Containers[0].ModelDataUrl".to_owned(),
            })?
            .to_owned();
        Ok(Package {
            group: group.to_owned(),
            arn: arn.to_owned(),
            version: d.get("ModelPackageVersion").and_then(Value::as_u64),
            approval_status: d.get("ModelApprovalStatus").and_then(Value::as_str).unwrap_or_default().to_owned(),
            creation_time: d.get("CreationTime").cloned().unwrap_or(Value::Null),
            model_data_url,
            model_metrics: d.get("ModelMetrics").cloned().unwrap_or(Value::Null),
            model_quality: None,
            customer_metadata: d
                .get("CustomerMetadataProperties")
                .and_then(|m| serde_json::from_value(m.clone()).ok())
                .unwrap_or_default(),
        })
    }

    /// Sets a package's approval status, keeping its metadata.
    pub async fn set_status(&self, package: &Package, status: &str, description: &str) -> Result<(), RegistryError> {
        let body = json!({"ModelPackageArn": package.arn, "ModelApprovalStatus": status,
            "ApprovalDescription": description, "CustomerMetadataProperties": package.customer_metadata});
        self.call("UpdateModelPackage", &body).await.map(drop)
    }

    /// Registers a new version (creating the group if it does not exist); returns its ARN.
    pub async fn create(&self, new: &NewPackage) -> Result<String, RegistryError> {
        let group = json!({"ModelPackageGroupName": new.group,
            "ModelPackageGroupDescription": "Basket price-sensitivity models (retail-api)"});
        match self.call("CreateModelPackageGroup", &group).await {
            Ok(_) => tracing::info!(group = %new.group, "model package group created"),
            Err(RegistryError::Api { ref code, ref message, .. })
                if code.contains("ResourceInUse")
                    || code.contains("Conflict")
                    || message.contains("already exists") => {}
            Err(e) => return Err(e),
        }
        let body = json!({
            "ModelPackageGroupName": new.group,
            "ModelPackageDescription": new.description,
            "ModelApprovalStatus": new.approval_status,
            "InferenceSpecification": {
                "Containers": [{"Image": new.image, "ModelDataUrl": new.model_data_url}],
                "SupportedContentTypes": ["application/json", "text/csv"],
                "SupportedResponseMIMETypes": ["application/json", "text/csv"],
            },
            "ModelMetrics": {"ModelQuality": {"Statistics":
                {"ContentType": "application/json", "S3Uri": new.statistics_url}}},
            "CustomerMetadataProperties": new.customer_metadata,
        });
        let answer = self.call("CreateModelPackage", &body).await?;
        answer.get("ModelPackageArn").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| RegistryError::Http {
            operation: "CreateModelPackage",
            reason: "answer has no ModelPackageArn".to_owned(),
        })
    }
}
