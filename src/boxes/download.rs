//! Resumable downloads of box files.
//!
//! Images are hundreds of MB; a dropped connection must not start them over.
//! Bytes go to `<store>/.downloads/<key>.part`, kept across runs with the
//! server's validator (ETag or Last-Modified) beside it; the next attempt
//! asks for the rest with `Range` + `If-Range`, and starts over only when the
//! server's file changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::checksum::hex;
use super::BoxError;
use crate::output::Printer;

/// Attempts within one command before giving up (each one resumes).
const ATTEMPTS: u32 = 5;

/// A finished download in the store's download folder, locked against
/// other processes fetching the same URL until it is discarded.
pub(crate) struct Downloaded {
    pub path: PathBuf,
    sidecar: PathBuf,
    _lock: std::fs::File,
}

impl Downloaded {
    /// Deletes the file once it was imported (or proved bad).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(&self.sidecar);
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Validator {
    url: String,
    etag: Option<String>,
    last_modified: Option<String>,
}

fn err(url: &str, message: impl Into<String>) -> BoxError {
    BoxError::Download {
        url: url.to_string(),
        message: message.into(),
    }
}

pub(crate) fn client(url: &str) -> Result<reqwest::Client, BoxError> {
    // No transparent gzip: byte offsets must be those of the file itself.
    reqwest::Client::builder()
        .no_gzip()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| err(url, e.to_string()))
}

/// Downloads `url` into `dir`, resuming a previous partial download.
pub(crate) async fn fetch(
    url: &str,
    dir: &Path,
    lock_dir: &Path,
    label: &str,
    printer: &Printer,
) -> Result<Downloaded, BoxError> {
    let key = &hex(&Sha256::digest(url.as_bytes()))[..24];
    // Two processes appending to one .part would corrupt it.
    let lock = lock(
        &lock_dir.join(format!("download-{key}.lock")),
        label,
        printer,
    )
    .await?;
    let part = dir.join(format!("{key}.part"));
    let sidecar = dir.join(format!("{key}.json"));
    let client = client(url)?;
    let mut validator: Validator = std::fs::read(&sidecar)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|v: &Validator| v.url == url)
        .unwrap_or_default();
    let mut bar = None;
    let mut last_error = String::new();
    for _ in 0..ATTEMPTS {
        let mut offset = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        let if_range = validator
            .etag
            .clone()
            .or_else(|| validator.last_modified.clone());
        if if_range.is_none() {
            // Without a validator we cannot tell the server's file is the same.
            offset = 0;
        }
        let mut request = client.get(url);
        if offset > 0 {
            request = request.header(RANGE, format!("bytes={offset}-"));
            if let Some(v) = &if_range {
                request = request.header(IF_RANGE, v.as_str());
            }
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Err(err(url, error_text(&e))),
        };
        let status = response.status();
        let total = match status {
            StatusCode::PARTIAL_CONTENT => {
                let range = header(&response, CONTENT_RANGE);
                match parse_content_range(&range) {
                    Some((start, total)) if start == offset => total,
                    _ => {
                        return Err(err(
                            url,
                            format!("the server answered a resume with range `{range}`"),
                        ))
                    }
                }
            }
            StatusCode::OK => {
                offset = 0;
                validator = Validator {
                    url: url.to_string(),
                    etag: header_opt(&response, ETAG),
                    last_modified: header_opt(&response, LAST_MODIFIED),
                };
                if let Ok(bytes) = serde_json::to_vec(&validator) {
                    let _ = std::fs::write(&sidecar, bytes);
                }
                response.content_length()
            }
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => {
                // Either the .part is complete already, or the file shrank.
                let range = header(&response, CONTENT_RANGE);
                let total = range.rsplit('/').next().and_then(|t| t.parse::<u64>().ok());
                if total == Some(offset) {
                    return Ok(Downloaded {
                        path: part,
                        sidecar,
                        _lock: lock,
                    });
                }
                let _ = std::fs::remove_file(&part);
                continue;
            }
            s => return Err(err(url, format!("the server answered {s}"))),
        };
        if offset > 0 {
            printer.info(&format!(
                "resuming the download of {label} at {} MB",
                offset / 1_000_000
            ));
        }
        let bar = bar.get_or_insert_with(|| printer.bytes_bar(total.unwrap_or(0), label));
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(offset);
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(offset > 0)
            .truncate(offset == 0)
            .open(&part)
            .await
            .map_err(|source| BoxError::Write {
                path: part.clone(),
                source,
            })?;
        let mut written = offset;
        let outcome = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    file.write_all(&chunk)
                        .await
                        .map_err(|source| BoxError::Write {
                            path: part.clone(),
                            source,
                        })?;
                    written += chunk.len() as u64;
                    bar.set_position(written);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(error_text(&e)),
            }
        };
        file.flush().await.map_err(|source| BoxError::Write {
            path: part.clone(),
            source,
        })?;
        drop(file);
        match outcome {
            Ok(()) if total.is_none_or(|t| t == written) => {
                bar.finish_and_clear();
                return Ok(Downloaded {
                    path: part,
                    sidecar,
                    _lock: lock,
                });
            }
            Ok(()) => last_error = format!("the connection closed at byte {written}"),
            Err(e) => last_error = e,
        }
        if written == offset {
            // No progress at all: retrying at once will not help.
            break;
        }
        printer.verbose(&format!(
            "download of {label} interrupted at byte {written} ({last_error}); resuming"
        ));
    }
    if let Some(bar) = bar {
        bar.abandon();
    }
    Err(err(url, last_error))
}

/// Waits for the lock file `path` without blocking the async threads.
async fn lock(path: &Path, label: &str, printer: &Printer) -> Result<std::fs::File, BoxError> {
    let write_err = |source| BoxError::Write {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(write_err)?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {}
        Err(std::fs::TryLockError::Error(e)) => return Err(write_err(e)),
    }
    printer.info(&format!(
        "waiting for another box command that is downloading {label}..."
    ));
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(|e| write_err(std::io::Error::other(e)))?
        .map_err(write_err)
}

/// A small text file (a checksum list).
pub(crate) async fn fetch_text(url: &str) -> Result<String, BoxError> {
    let response = client(url)?
        .get(url)
        .send()
        .await
        .map_err(|e| err(url, error_text(&e)))?;
    if !response.status().is_success() {
        return Err(err(
            url,
            format!("the server answered {}", response.status()),
        ));
    }
    response.text().await.map_err(|e| err(url, error_text(&e)))
}

/// The checksum of `file_name` in a `SHA256SUMS`-style list.
pub(crate) fn checksum_from_list(list: &str, file_name: &str) -> Option<String> {
    list.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        let hash = parts.next()?;
        let name = parts.next()?.trim_start_matches('*');
        (name == file_name || name.rsplit('/').next() == Some(file_name))
            .then(|| hash.to_ascii_lowercase())
    })
}

/// reqwest's own text omits the cause that says what went wrong.
fn error_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn header(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    header_opt(response, name).unwrap_or_default()
}

fn header_opt(response: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `bytes START-END/TOTAL` to (START, TOTAL).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_parsed() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn checksum_lists_are_searched_by_file_name() {
        let list = "abc  other.qcow2\nDEF *debian-12-genericcloud-amd64.qcow2\n";
        assert_eq!(
            checksum_from_list(list, "debian-12-genericcloud-amd64.qcow2").as_deref(),
            Some("def")
        );
        assert_eq!(checksum_from_list(list, "missing"), None);
    }
}
