//! Supabase Storage API shapes (JSON) and how a failed response is classified. Pure: no I/O.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /bucket` item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub file_size_limit: Option<u64>,
    #[serde(default)]
    pub allowed_mime_types: Option<Vec<String>>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// What `PUT /bucket/{id}` is sent to give a bucket another's configuration. The server changes
/// only the fields sent; a size limit cannot be removed through it (its schema takes a number
/// or a string), so a bucket without one sends none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketUpdate {
    pub public: bool,
    pub allowed_mime_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size_limit: Option<u64>,
}

impl BucketUpdate {
    /// The update that gives a bucket `want`'s configuration.
    pub fn to_match(want: &Bucket) -> BucketUpdate {
        BucketUpdate {
            public: want.public,
            allowed_mime_types: want.allowed_mime_types.clone().unwrap_or_default(),
            file_size_limit: want.file_size_limit,
        }
    }
}

/// An object as listed (v1 items are relative to their folder; [`super::list`] makes names full).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListItem {
    pub name: String,
    /// `null` for folders in v1 listings.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub last_accessed_at: Option<String>,
    /// `null` for folders.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Present only on servers that list it; otherwise read per object with `GET /object/info`.
    #[serde(default)]
    pub user_metadata: Option<Value>,
}

/// `GET /object/info/{bucket}/{name}` answer. The real server (storage v1.70,
/// `../shared/storage-api-transcript.md` §3) answers `{id, name, version, bucket_id, size,
/// content_type, cache_control, etag, metadata, last_modified, created_at}` where `metadata` is
/// the **user** metadata (`{}` when none). Servers that answer the object's database row instead
/// carry the user metadata as `user_metadata`, and `metadata` is then the system metadata:
/// [`InfoAnswer::user_metadata`] reads both shapes.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InfoAnswer {
    #[serde(default)]
    pub metadata: Option<Value>,
    /// `Some(Null)` when the key is there with null (the row shape, no user metadata), `None`
    /// when it is missing (storage v1.70's shape).
    #[serde(default, deserialize_with = "present")]
    pub user_metadata: Option<Value>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub cache_control: Option<String>,
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
}

/// A field that is present, null or not: `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl InfoAnswer {
    /// The user metadata, whichever shape the server answered; None when there is none
    /// (`{}`, null or missing).
    pub fn user_metadata(&self) -> Option<Value> {
        let user = match &self.user_metadata {
            // The row shape: `user_metadata` is the user's, `metadata` the system's.
            Some(u) => u.clone(),
            None => self.metadata.clone().unwrap_or(Value::Null),
        };
        match &user {
            Value::Object(m) if !m.is_empty() => Some(user),
            _ => None,
        }
    }
}

/// `POST /object/list-v2/{bucket}` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct ListV2Page {
    #[serde(default, rename = "hasNext")]
    pub has_next: bool,
    #[serde(default, rename = "nextCursor")]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub folders: Vec<Value>,
    #[serde(default)]
    pub objects: Vec<ListItem>,
}

/// One object to back up: its full name and what the listing said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInfo {
    pub name: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub last_accessed_at: Option<String>,
    pub metadata: Value,
    /// `None` when the listing did not say (ask `GET /object/info`).
    pub user_metadata: Option<Value>,
}

impl ObjectInfo {
    pub fn from_item(full_name: String, item: ListItem) -> ObjectInfo {
        ObjectInfo {
            name: full_name,
            created_at: item.created_at,
            updated_at: item.updated_at,
            last_accessed_at: item.last_accessed_at,
            metadata: item.metadata.unwrap_or(Value::Null),
            user_metadata: item.user_metadata,
        }
    }
    pub fn etag(&self) -> Option<&str> {
        self.metadata.get("eTag").and_then(Value::as_str)
    }
    pub fn size(&self) -> Option<u64> {
        self.metadata.get("size").and_then(Value::as_u64)
    }
    pub fn mimetype(&self) -> Option<&str> {
        self.metadata.get("mimetype").and_then(Value::as_str)
    }
    pub fn cache_control(&self) -> Option<&str> {
        self.metadata.get("cacheControl").and_then(Value::as_str)
    }
}

/// What kind of failure a response is, by the body's `statusCode` when it has one (the server
/// answers many failures as HTTP 400 with the real status in the body), else the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 401/403: the key is wrong (or lacks rights); retrying cannot help.
    Auth,
    NotFound,
    /// 409: the object or bucket exists.
    Exists,
    /// list-v2 is not enabled on this server.
    FeatureNotEnabled,
    /// 408, 429, 5xx: worth retrying.
    Transient,
    /// Anything else (refused name, MIME type, size...).
    Permanent,
}

/// A failed response: its classification, effective status and the server's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub failure: Failure,
    pub status: u16,
    pub message: String,
    /// The body's `code` (`NoSuchKey`, `NoSuchBucket`, `InvalidRange`, `KeyAlreadyExists`…):
    /// what the failure is where the status is shared (both "not found"s are `"404"`).
    pub code: Option<String>,
}

impl ApiError {
    /// A failure that is not a Storage API answer (no HTTP answer, or a local one).
    pub fn local(failure: Failure, message: impl Into<String>) -> ApiError {
        ApiError {
            failure,
            status: 0,
            message: message.into(),
            code: None,
        }
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Status 0: no HTTP answer at all (a refused or broken connection).
        if self.status == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "HTTP {}: {}", self.status, self.message)
        }
    }
}

/// Classify a non-2xx response from its HTTP status and body.
pub fn classify(http_status: u16, body: &[u8]) -> ApiError {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| json.as_ref().and_then(|j| j.get(k)).cloned();
    let body_status = field("statusCode").and_then(|v| match v {
        Value::String(s) => s.trim().parse::<u16>().ok(),
        Value::Number(n) => n.as_u64().map(|n| n as u16),
        _ => None,
    });
    let code = field("code").and_then(|v| v.as_str().map(str::to_string));
    let error = field("error")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let message = field("message")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                "no details".into()
            } else {
                text.chars().take(300).collect()
            }
        });
    let status = body_status.unwrap_or(http_status);
    let failure = if error == "FeatureNotEnabled"
        || code.as_deref() == Some("FeatureNotEnabled")
        || message.contains("FeatureNotEnabled")
    {
        Failure::FeatureNotEnabled
    } else {
        match status {
            401 | 403 => Failure::Auth,
            404 => Failure::NotFound,
            409 => Failure::Exists,
            408 | 429 | 500..=599 => Failure::Transient,
            _ if http_status >= 500 || http_status == 429 => Failure::Transient,
            _ => Failure::Permanent,
        }
    };
    let message = if error.is_empty() || message.starts_with(&error) {
        message
    } else {
        format!("{error}: {message}")
    };
    ApiError {
        failure,
        status,
        message,
        code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_status_wins_over_http_status() {
        let e = classify(
            400,
            br#"{"statusCode":"409","error":"Duplicate","message":"The resource already exists"}"#,
        );
        assert_eq!((e.failure, e.status), (Failure::Exists, 409));
        let e = classify(
            400,
            br#"{"statusCode":"403","error":"Unauthorized","message":"invalid signature"}"#,
        );
        assert_eq!(e.failure, Failure::Auth);
        let e = classify(
            400,
            br#"{"statusCode":"404","error":"not_found","message":"Object not found"}"#,
        );
        assert_eq!(e.failure, Failure::NotFound);
        let e = classify(
            400,
            br#"{"statusCode":"400","error":"FeatureNotEnabled","message":"feature not enabled"}"#,
        );
        assert_eq!(e.failure, Failure::FeatureNotEnabled);
        let e = classify(
            400,
            r#"{"statusCode":"400","error":"InvalidKey","message":"Invalid key: é"}"#.as_bytes(),
        );
        assert_eq!(e.failure, Failure::Permanent);
        assert_eq!(e.message, "InvalidKey: Invalid key: é");
    }

    #[test]
    fn http_status_without_body() {
        assert_eq!(classify(503, b"").failure, Failure::Transient);
        assert_eq!(classify(429, b"slow down").failure, Failure::Transient);
        assert_eq!(classify(401, b"").failure, Failure::Auth);
        assert_eq!(
            classify(502, b"<html>bad gateway</html>").message,
            "<html>bad gateway</html>"
        );
        assert_eq!(classify(418, b"{}").failure, Failure::Permanent);
    }
}

#[cfg(test)]
mod info_tests {
    use super::*;

    #[test]
    fn user_metadata_is_read_from_either_shape_of_the_info_answer() {
        // storage v1.70, verbatim (storage-api-transcript.md §3.1, with user metadata as in §3).
        let v170: InfoAnswer = serde_json::from_str(
            r#"{"id":"b1c502e7-0c0f-42d6-b99f-9b248ec3051b","name":"d/h.txt","version":"709b6960-a5a1-41f1-8f4c-a8769b1e28a9","bucket_id":"pub","size":37,"content_type":"text/plain","cache_control":"max-age=77","etag":"\"030f331ba568f55bedf7356e11a2c628\"","metadata":{"a":"b","n":1},"last_modified":"2026-12-02T05:02:59.338Z","created_at":"2026-12-02T05:02:59.312Z"}"#,
        )
        .unwrap();
        assert_eq!(
            v170.user_metadata(),
            Some(serde_json::json!({"a": "b", "n": 1}))
        );
        let none: InfoAnswer =
            serde_json::from_str(r#"{"name":"m/m1.txt","metadata":{}}"#).unwrap();
        assert_eq!(none.user_metadata(), None);
        // The database-row shape: metadata is the system's; user_metadata the user's.
        let row: InfoAnswer = serde_json::from_str(
            r#"{"name":"x","metadata":{"eTag":"\"e\"","size":3},"user_metadata":{"k":"v"}}"#,
        )
        .unwrap();
        assert_eq!(row.user_metadata(), Some(serde_json::json!({"k": "v"})));
        let row_none: InfoAnswer = serde_json::from_str(
            r#"{"name":"x","metadata":{"eTag":"\"e\"","size":3},"user_metadata":null}"#,
        )
        .unwrap();
        assert_eq!(
            row_none.user_metadata(),
            None,
            "system metadata is never taken for the user's"
        );
    }
}
