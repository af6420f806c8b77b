//! [`S3BlobStore`]: Amazon S3 or an S3-compatible store, with presigned URLs clients use
//! directly.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use amp_core::config::S3Config;
use amp_core::traits::blob_store::ByteStream;
use amp_core::{BlobKey, BlobMeta, BlobStore, Error, PresignedRequest, Result, Secret, UploadConstraints};

use super::{check_prefix, check_url_lifetime};

/// Keys per `DeleteObjects` call: S3's maximum.
const DELETE_BATCH: i32 = 1000;

/// Where an [`S3BlobStore`] keeps its objects, and how it reaches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Options {
    /// The bucket, which must exist.
    pub bucket: String,
    /// Its region, e.g. `us-east-1` (what S3-compatible stores usually expect).
    pub region: String,
    /// An S3-compatible endpoint such as `http://127.0.0.1:9000`; AWS when `None`.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most compatible stores need.
    pub force_path_style: bool,
    /// The access key id of static credentials; with `secret_key`, or neither.
    pub access_key: Option<Secret>,
    /// The secret of static credentials.
    pub secret_key: Option<Secret>,
    /// Server-side encryption of every object written: `AES256` or `aws:kms`.
    pub server_side_encryption: Option<String>,
    /// The KMS key for `aws:kms` (the bucket's default key when `None`).
    pub kms_key_id: Option<String>,
    /// Prepended to every key, e.g. `amp/`, so one bucket can hold other things too; it must
    /// end with `/`.
    pub prefix: Option<String>,
}

impl S3Options {
    /// Options for `bucket` in `us-east-1`, reached with the environment's credentials, no
    /// encryption and no prefix.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Options {
            bucket: bucket.into(),
            region: "us-east-1".to_owned(),
            endpoint: None,
            force_path_style: false,
            access_key: None,
            secret_key: None,
            server_side_encryption: None,
            kms_key_id: None,
            prefix: None,
        }
    }
}

impl From<&S3Config> for S3Options {
    fn from(config: &S3Config) -> Self {
        S3Options {
            bucket: config.bucket.clone(),
            region: config.region.clone(),
            endpoint: config.endpoint.clone(),
            force_path_style: config.force_path_style,
            access_key: config.access_key.clone(),
            secret_key: config.secret_key.clone(),
            server_side_encryption: config.server_side_encryption.clone(),
            kms_key_id: config.kms_key_id.clone(),
            prefix: config.prefix.clone(),
        }
    }
}

/// A [`BlobStore`] on Amazon S3 or an S3-compatible store (MinIO, Ceph, s3s).
///
/// Credentials are the static pair in [`S3Options`], or else `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN` read from the environment when
/// the store is created. Instance profiles, SSO and `~/.aws` profiles are not supported:
/// they need the `aws-config` crate, which AMP does not pull in.
///
/// A missing key is `NotFound`; S3 unreachable, timing out or answering 5xx or `SlowDown` is
/// `Unavailable` (retryable); any other refusal is `Upstream` with S3's status and code.
/// Messages never carry credentials.
///
/// Objects are written with one `PutObject` each, so one object is at most 5 GiB.
#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    prefix: String,
    encryption: Option<ServerSideEncryption>,
    kms_key_id: Option<String>,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("encryption", &self.encryption)
            .finish_non_exhaustive()
    }
}

impl S3BlobStore {
    /// A store on `options.bucket`. Checks the options and finds credentials; it does not
    /// contact S3, so a wrong endpoint or bucket shows on first use.
    pub fn new(options: S3Options) -> Result<Self> {
        if options.bucket.trim().is_empty() {
            return Err(Error::invalid_input("S3: the bucket must not be empty"));
        }
        let encryption = match options.server_side_encryption.as_deref() {
            None => None,
            Some(sse @ ("AES256" | "aws:kms")) => Some(ServerSideEncryption::from(sse)),
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "S3: server_side_encryption must be AES256 or aws:kms, got {other:?}"
                )));
            }
        };
        if options.kms_key_id.is_some() && encryption != Some(ServerSideEncryption::AwsKms) {
            return Err(Error::invalid_input("S3: kms_key_id needs server_side_encryption = aws:kms"));
        }
        let prefix = options.prefix.clone().unwrap_or_default();
        if !prefix.is_empty() {
            check_prefix(&prefix).map_err(|_| {
                Error::invalid_input(format!("S3: prefix {prefix:?} must be key segments ending in `/`"))
            })?;
        }

        let mut config = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(options.region.clone()))
            .credentials_provider(credentials(&options)?)
            .force_path_style(options.force_path_style)
            // Checksums only where S3 requires them: S3-compatible stores differ in the
            // trailing checksums of chunked uploads, and a presigned PUT must not carry the
            // checksum of an empty body.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(TimeoutConfig::builder().connect_timeout(Duration::from_secs(10)).build());
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(S3BlobStore {
            client: Client::from_conf(config.build()),
            bucket: options.bucket,
            prefix,
            encryption,
            kms_key_id: options.kms_key_id,
        })
    }

    fn object_key(&self, key: &BlobKey) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Starts reading an object: `get` collects its body, `get_stream` passes it on.
    async fn get_object(&self, key: &BlobKey) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| s3_error("get", key.as_str(), e))
    }

    async fn put_body(
        &self,
        key: &BlobKey,
        body: aws_sdk_s3::primitives::ByteStream,
        media_type: Option<&str>,
    ) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .body(body)
            .set_content_type(media_type.map(str::to_owned))
            .set_server_side_encryption(self.encryption.clone())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .send()
            .await
            .map_err(|e| s3_error("put", key.as_str(), e))?;
        Ok(())
    }

    /// One page of keys under `full_prefix` (bucket keys, our prefix included).
    async fn list_page(
        &self,
        full_prefix: &str,
        token: Option<String>,
    ) -> Result<(Vec<String>, Option<String>)> {
        let page = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(full_prefix)
            .max_keys(DELETE_BATCH)
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| s3_error("list", full_prefix, e))?;
        let keys = page.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
        let next = if page.is_truncated() == Some(true) {
            page.next_continuation_token().map(str::to_owned)
        } else {
            None
        };
        Ok((keys, next))
    }
}

/// The static pair, or else the environment's.
fn credentials(options: &S3Options) -> Result<Credentials> {
    match (&options.access_key, &options.secret_key) {
        (Some(access), Some(secret)) => {
            Ok(Credentials::new(access.expose(), secret.expose(), None, None, "amp-static"))
        }
        (None, None) => {
            let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
            match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                (Some(access), Some(secret)) => {
                    Ok(Credentials::new(access, secret, var("AWS_SESSION_TOKEN"), None, "amp-environment"))
                }
                _ => Err(Error::invalid_input(
                    "S3: no credentials: set access_key and secret_key, or AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY (instance profiles and ~/.aws profiles are not supported)",
                )),
            }
        }
        _ => Err(Error::invalid_input("S3: access_key and secret_key go together")),
    }
}

/// When a URL starting at `start` and living `expires_in` stops working.
fn expiry(start: SystemTime, expires_in: Duration) -> Result<(PresigningConfig, DateTime<Utc>)> {
    check_url_lifetime(expires_in)?;
    let config = PresigningConfig::builder()
        .start_time(start)
        .expires_in(expires_in)
        .build()
        .map_err(|e| Error::invalid_input(format!("S3: {e}")))?;
    Ok((config, DateTime::<Utc>::from(start + expires_in)))
}

/// Maps an SDK failure of `op` on `target` (a key or prefix) to our error.
fn s3_error<E>(op: &str, target: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(_) => {}
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            // The SDK's transport errors name the endpoint and the I/O failure, never the
            // credentials (those only go into the signature).
            return Error::unavailable(format!(
                "S3 did not answer the {op} of {target}: {}",
                DisplayErrorContext(&err)
            ));
        }
        _ => return Error::internal(format!("S3: the {op} of {target} could not be sent"), err),
    }
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().unwrap_or("no error code").to_owned();
    let message = err.message().unwrap_or_default().to_owned();
    if matches!(code.as_str(), "NoSuchKey" | "NotFound") || (status == Some(404) && code != "NoSuchBucket") {
        return Error::not_found(format!("blob {target}"));
    }
    if status.is_some_and(|s| s >= 500 || s == 429)
        || matches!(code.as_str(), "SlowDown" | "ServiceUnavailable")
    {
        return Error::unavailable(format!("S3 is unavailable for the {op} of {target}: {code} {message}"));
    }
    Error::Upstream {
        service: "s3".to_owned(),
        status,
        retryable: false,
        message: format!("the {op} of {target} was refused: {code} {message}"),
        retry_after: None,
        source: Some(Box::new(err)),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, media_type: Option<&str>) -> Result<()> {
        self.put_body(key, bytes.into(), media_type).await
    }

    async fn put_file(&self, key: &BlobKey, path: &Path, media_type: Option<&str>) -> Result<()> {
        let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
            .await
            .map_err(|e| Error::internal(format!("S3: cannot read {} to upload it", path.display()), e))?;
        self.put_body(key, body, media_type).await
    }

    async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        let object = self.get_object(key).await?;
        let bytes = object.body.collect().await.map_err(|e| {
            Error::unavailable(format!("S3: the download of {key} broke off: {}", DisplayErrorContext(&e)))
        })?;
        Ok(bytes.into_bytes())
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<ByteStream> {
        let object = self.get_object(key).await?;
        let key = key.clone();
        let pieces = futures::stream::unfold(Some(object.body), move |body| {
            let key = key.clone();
            async move {
                let mut body = body?;
                match body.next().await? {
                    Ok(piece) => Some((Ok(piece), Some(body))),
                    Err(e) => Some((
                        Err(Error::unavailable(format!(
                            "S3: the download of {key} broke off: {}",
                            DisplayErrorContext(&e)
                        ))),
                        None,
                    )),
                }
            }
        });
        Ok(pieces.boxed())
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>> {
        let head = self.client.head_object().bucket(&self.bucket).key(self.object_key(key)).send().await;
        match head {
            Ok(head) => Ok(Some(BlobMeta {
                key: key.clone(),
                size_bytes: head.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                media_type: head.content_type().map(str::to_owned),
            })),
            Err(e) => match s3_error("head", key.as_str(), e) {
                Error::NotFound { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .send()
            .await
            .map_err(|e| s3_error("delete", key.as_str(), e))?;
        Ok(())
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        if check_prefix(prefix)?.is_none() {
            return Err(Error::invalid_input("delete_prefix needs a non-empty prefix, such as `users/u1/`"));
        }
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut removed = 0;
        // Each round lists from the start again, so no continuation token outlives the
        // objects it pointed past; a round that fails stops the loop.
        loop {
            let (keys, _) = self.list_page(&full_prefix, None).await?;
            if keys.is_empty() {
                return Ok(removed);
            }
            let objects = keys
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::internal("S3: cannot name an object to delete", e))?;
            let batch = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| Error::internal("S3: cannot build a delete batch", e))?;
            let answer = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(batch)
                .send()
                .await
                .map_err(|e| s3_error("delete", &full_prefix, e))?;
            let failed = answer.errors();
            removed += (keys.len() - failed.len()) as u64;
            if let Some(first) = failed.first() {
                let code = first.code().unwrap_or("no error code");
                return Err(Error::Upstream {
                    service: "s3".to_owned(),
                    status: None,
                    retryable: failed.iter().all(|e| {
                        matches!(e.code(), Some("InternalError" | "SlowDown" | "ServiceUnavailable"))
                    }),
                    message: format!(
                        "{} of {} objects under {prefix} were not deleted ({removed} were): {code} {}",
                        failed.len(),
                        keys.len(),
                        first.message().unwrap_or_default()
                    ),
                    retry_after: None,
                    source: None,
                });
            }
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobKey>> {
        check_prefix(prefix)?;
        let full_prefix = format!("{}{prefix}", self.prefix);
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = self.list_page(&full_prefix, token).await?;
            for object_key in page {
                // Objects under our prefix that are not valid keys were not written by us.
                match object_key.strip_prefix(&self.prefix).map(BlobKey::new) {
                    Some(Ok(key)) => keys.push(key),
                    _ => tracing::debug!(key = %object_key, "S3 object skipped: not a blob key"),
                }
            }
            match next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// A presigned `PUT` that signs `Content-Type` and `Content-Length`, so S3 itself refuses
    /// another media type or size, and an upload after the expiry, with 403.
    ///
    /// S3 checks an exact length, not a maximum: pass the size the client declared as
    /// `constraints.max_bytes`, and the client must send exactly that many bytes. Send every
    /// header in [`PresignedRequest::headers`] (with encryption configured, those include
    /// the `x-amz-server-side-encryption` headers).
    async fn presign_upload(
        &self,
        key: &BlobKey,
        constraints: &UploadConstraints,
        expires_in: Duration,
    ) -> Result<PresignedRequest> {
        let length = i64::try_from(constraints.max_bytes)
            .map_err(|_| Error::invalid_input("S3: an upload of more than 2^63 bytes cannot be presigned"))?;
        let (config, expires_at) = expiry(SystemTime::now(), expires_in)?;
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .content_type(&constraints.media_type)
            .content_length(length)
            .set_server_side_encryption(self.encryption.clone())
            .set_ssekms_key_id(self.kms_key_id.clone())
            .presigned(config)
            .await
            .map_err(|e| s3_error("presigned upload", key.as_str(), e))?;
        Ok(PresignedRequest {
            method: presigned.method().to_owned(),
            url: presigned.uri().to_owned(),
            headers: presigned.headers().map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned())).collect(),
            expires_at,
        })
    }

    async fn presign_download(&self, key: &BlobKey, expires_in: Duration) -> Result<PresignedRequest> {
        let (config, expires_at) = expiry(SystemTime::now(), expires_in)?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(key))
            .presigned(config)
            .await
            .map_err(|e| s3_error("presigned download", key.as_str(), e))?;
        Ok(PresignedRequest {
            method: presigned.method().to_owned(),
            url: presigned.uri().to_owned(),
            headers: presigned.headers().map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned())).collect(),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> S3Options {
        S3Options {
            endpoint: Some("http://127.0.0.1:1".into()),
            force_path_style: true,
            access_key: Some(Secret::new("AKIDEXAMPLE")),
            secret_key: Some(Secret::new("s3cr3t-never-printed")),
            ..S3Options::new("bucket")
        }
    }

    #[test]
    fn options_are_checked_when_the_store_is_made() {
        assert!(S3BlobStore::new(options()).is_ok());
        let bad = [
            S3Options { bucket: " ".into(), ..options() },
            S3Options { server_side_encryption: Some("rot13".into()), ..options() },
            S3Options { kms_key_id: Some("k".into()), ..options() },
            S3Options { prefix: Some("amp".into()), ..options() },
            S3Options { secret_key: None, ..options() },
        ];
        for options in bad {
            let err = S3BlobStore::new(options.clone()).unwrap_err();
            assert_eq!(err.kind(), amp_core::ErrorKind::InvalidInput, "{options:?}");
        }
        let kms = S3Options {
            server_side_encryption: Some("aws:kms".into()),
            kms_key_id: Some("k".into()),
            prefix: Some("amp/".into()),
            ..options()
        };
        assert!(S3BlobStore::new(kms).is_ok());
    }

    #[test]
    fn debug_output_shows_no_credentials() {
        let store = S3BlobStore::new(options()).unwrap();
        assert!(!format!("{store:?} {:?}", options()).contains("s3cr3t"));
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_unavailable_without_credentials_in_the_message() {
        let store = S3BlobStore::new(options()).unwrap();
        let err = store.get(&BlobKey::new("a/b").unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::Unavailable, "{err}");
        assert!(err.is_retryable());
        assert!(!err.to_string().contains("s3cr3t") && !format!("{err:?}").contains("s3cr3t"));
    }

    #[tokio::test]
    async fn presigned_uploads_sign_type_and_length() {
        let store = S3BlobStore::new(options()).unwrap();
        let constraints = UploadConstraints { media_type: "application/pdf".into(), max_bytes: 1234 };
        let up = store
            .presign_upload(&BlobKey::new("a/b.pdf").unwrap(), &constraints, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(up.method, "PUT");
        assert_eq!(up.headers.get("content-type").map(String::as_str), Some("application/pdf"));
        assert_eq!(up.headers.get("content-length").map(String::as_str), Some("1234"));
        let signed = up.url.split("X-Amz-SignedHeaders=").nth(1).unwrap().split('&').next().unwrap();
        assert!(signed.contains("content-length") && signed.contains("content-type"), "{signed}");
        assert!(!up.url.contains("s3cr3t"));
        let err = store
            .presign_upload(&BlobKey::new("a/b").unwrap(), &constraints, Duration::from_secs(8 * 86_400))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), amp_core::ErrorKind::InvalidInput);
    }
}
