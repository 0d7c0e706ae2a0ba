//! Ranged reads from S3-compatible servers that answer a `Range` request with `200 OK`
//! instead of `206 Partial Content` — `rclone serve s3` does, with a correct `Content-Range` —
//! which `object_store` refuses ("Received non-partial response when range requested"). The
//! S3 backend switches to this path the first time a server answers so: a presigned GET with a
//! `Range` header, whose answer is accepted when its `Content-Range` (or, without one, the
//! whole object it then is) covers the range asked for.

use std::ops::Range;
use std::time::Duration;

use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::signer::Signer;

/// How long a presigned URL of one read stays valid.
const URL_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Why a lenient read failed: `NotFound`, or a message (with whether it is worth retrying).
#[derive(Debug)]
pub(crate) enum Failure {
    NotFound,
    Other { transient: bool, message: String },
}

fn other(transient: bool, message: impl Into<String>) -> Failure {
    Failure::Other {
        transient,
        message: message.into(),
    }
}

/// Whether `e` is object_store's refusal of a `200` answer to a ranged GET (its error type is
/// private: the message is all there is).
pub(crate) fn is_not_partial(e: &object_store::Error) -> bool {
    e.to_string()
        .contains("non-partial response when range requested")
}

/// GET `want` of `path` through a presigned URL, accepting 206 or 200 answers.
pub(crate) async fn get(
    store: &AmazonS3,
    http: &reqwest::Client,
    path: &Path,
    want: Range<u64>,
) -> Result<bytes::Bytes, Failure> {
    let url = store
        .signed_url(reqwest::Method::GET, path, URL_LIFETIME)
        .await
        .map_err(|e| other(false, format!("presigning the read: {e}")))?;
    let answer = http
        .get(url.as_str())
        .header("Range", format!("bytes={}-{}", want.start, want.end - 1))
        .send()
        .await
        .map_err(|e| other(true, format!("request failed: {e}")))?;
    let status = answer.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(Failure::NotFound);
    }
    if !status.is_success() {
        let body = answer.text().await.unwrap_or_default();
        let snippet: String = body.chars().take(300).collect();
        return Err(other(
            status.is_server_error(),
            format!("HTTP {status}: {snippet}"),
        ));
    }
    let content_range = answer
        .headers()
        .get(reqwest::header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = answer
        .bytes()
        .await
        .map_err(|e| other(true, format!("reading the answer: {e}")))?;
    slice(&want, content_range.as_deref(), body).map_err(|m| other(false, m))
}

/// The bytes of `want` in an answer whose body starts where its `Content-Range` says (or at 0
/// when there is none: the whole object).
pub(crate) fn slice(
    want: &Range<u64>,
    content_range: Option<&str>,
    body: bytes::Bytes,
) -> Result<bytes::Bytes, String> {
    let start = match content_range {
        Some(v) => parse_start(v)?,
        None => 0,
    };
    let end = start + body.len() as u64;
    if want.start < start || want.end > end {
        return Err(format!(
            "the server answered bytes {start}..{end} for the range {}..{} ({})",
            want.start,
            want.end,
            content_range.unwrap_or("no Content-Range")
        ));
    }
    Ok(body.slice((want.start - start) as usize..(want.end - start) as usize))
}

/// The first byte of `bytes START-END/SIZE`.
fn parse_start(v: &str) -> Result<u64, String> {
    v.trim()
        .strip_prefix("bytes ")
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("unreadable Content-Range {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn answers_that_cover_the_range_are_sliced() {
        // A 206 or rclone's 200 with Content-Range: exactly the range.
        assert_eq!(
            slice(&(2..5), Some("bytes 2-4/10"), b("234")).unwrap(),
            b("234")
        );
        // More than asked for, starting earlier.
        assert_eq!(
            slice(&(2..5), Some("bytes 0-9/10"), b("0123456789")).unwrap(),
            b("234")
        );
        // The whole object without a Content-Range.
        assert_eq!(slice(&(7..10), None, b("0123456789")).unwrap(), b("789"));
    }

    #[test]
    fn answers_that_miss_the_range_are_errors() {
        for (cr, body) in [
            (Some("bytes 3-4/10"), "34"),
            (Some("bytes 2-3/10"), "23"),
            (None, "0123"),
            (Some("items 2-4/10"), "234"),
            (Some("bytes x-4/10"), "234"),
        ] {
            assert!(slice(&(2..5), cr, b(body)).is_err(), "{cr:?} {body}");
        }
    }
}
