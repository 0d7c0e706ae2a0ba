//! The health ping after a run (healthchecks.io's convention).

use super::NightlyReport;
use crate::error::{Error, Result};

/// POST the report (JSON) to the healthcheck URL: `<url>` when `report.ok`, `<url>/fail`
/// otherwise (healthchecks.io's convention). The URL is never in an error message: it is a
/// credential of sorts.
pub fn ping(hc: &crate::config::Healthcheck, report: &NightlyReport) -> Result<()> {
    let url = if report.ok {
        hc.url.to_string()
    } else {
        format!("{}/fail", hc.url.as_str().trim_end_matches('/'))
    };
    let body = serde_json::to_vec(report).map_err(|e| Error::Invalid(e.to_string()))?;
    let host = hc.url.host_str().unwrap_or("?").to_string();
    let fail = |why: String| Error::Invalid(format!("health ping to {host} failed: {why}"));
    let client = reqwest::blocking::Client::builder()
        .timeout(hc.timeout)
        .build()
        .map_err(|e| fail(e.without_url().to_string()))?;
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .map_err(|e| fail(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    Ok(())
}
