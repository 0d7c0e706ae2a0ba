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
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)
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
    let error = field("error").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let message = field("message").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() { "no details".into() } else { text.chars().take(300).collect() }
    });
    let status = body_status.unwrap_or(http_status);
    let failure = if error == "FeatureNotEnabled" || message.contains("FeatureNotEnabled") {
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
    let message = if error.is_empty() || message.starts_with(&error) { message } else { format!("{error}: {message}") };
    ApiError { failure, status, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_status_wins_over_http_status() {
        let e = classify(400, br#"{"statusCode":"409","error":"Duplicate","message":"The resource already exists"}"#);
        assert_eq!((e.failure, e.status), (Failure::Exists, 409));
        let e = classify(400, br#"{"statusCode":"403","error":"Unauthorized","message":"invalid signature"}"#);
        assert_eq!(e.failure, Failure::Auth);
        let e = classify(400, br#"{"statusCode":"404","error":"not_found","message":"Object not found"}"#);
        assert_eq!(e.failure, Failure::NotFound);
        let e = classify(400, br#"{"statusCode":"400","error":"FeatureNotEnabled","message":"feature not enabled"}"#);
        assert_eq!(e.failure, Failure::FeatureNotEnabled);
        let e = classify(400, r#"{"statusCode":"400","error":"InvalidKey","message":"Invalid key: é"}"#.as_bytes());
        assert_eq!(e.failure, Failure::Permanent);
        assert_eq!(e.message, "InvalidKey: Invalid key: é");
    }

    #[test]
    fn http_status_without_body() {
        assert_eq!(classify(503, b"").failure, Failure::Transient);
        assert_eq!(classify(429, b"slow down").failure, Failure::Transient);
        assert_eq!(classify(401, b"").failure, Failure::Auth);
        assert_eq!(classify(502, b"<html>bad gateway</html>").message, "<html>bad gateway</html>");
        assert_eq!(classify(418, b"{}").failure, Failure::Permanent);
    }
}
