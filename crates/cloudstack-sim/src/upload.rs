//! The upload endpoint behind `getUploadParamsForTemplate`'s `postURL`:
//! `POST /upload/<id>`, multipart/form-data with the image as a file part,
//! headers `X-signature`, `X-metadata` and `X-expires` as CloudStack's
//! secondary storage servlet takes them, and a `Content-Length` (the servlet
//! refuses a body without one).
//!
//! The body is streamed to disk, never held in memory; a body longer than
//! its `Content-Length` is cut off. The file part must be a qcow2 without a
//! backing file, and match the checksum the template was registered with.

use std::io::Write;
use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::api::upload::checksum_of;
use crate::model::{Cloud, UploadState};

/// What the servlet answers, and what the template becomes.
pub struct Outcome {
    pub status: StatusCode,
    pub text: String,
}

impl Outcome {
    fn refuse(text: impl Into<String>) -> Outcome {
        Outcome {
            status: StatusCode::BAD_REQUEST,
            text: text.into(),
        }
    }
}

/// The checks made before a byte of the body is read: signature, expiry,
/// length. On success the template is `UploadInProgress`.
pub fn admit(
    cloud: &mut Cloud,
    site: &crate::api::upload::UploadSite,
    id: &str,
    req: &Request<Incoming>,
    now_secs: i64,
) -> Result<u64, Outcome> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let (Some(signature), Some(metadata), Some(expires)) = (
        header("x-signature"),
        header("x-metadata"),
        header("x-expires"),
    ) else {
        return Err(Outcome::refuse(
            "signature, metadata and expires are compulsory fields.",
        ));
    };
    let length = header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            Outcome::refuse("content length is not set in the request or has invalid value.")
        })?;
    let Some(t) = cloud
        .templates
        .iter_mut()
        .find(|t| t.id == id && t.upload.is_some())
    else {
        return Err(Outcome::refuse("signature validation failed."));
    };
    let Some(upload) = t.upload.as_mut() else {
        return Err(Outcome::refuse("signature validation failed."));
    };
    let expected = site.signature(id, &upload.metadata, &expires);
    if upload.metadata != metadata || !cloudstack::signing::signatures_match(&expected, &signature)
    {
        return Err(Outcome::refuse("signature validation failed."));
    }
    if now_secs >= upload.expires {
        if upload.state == UploadState::NotUploaded {
            upload.state = UploadState::UploadAbandoned;
        }
        return Err(Outcome::refuse("signature has expired."));
    }
    if upload.state != UploadState::NotUploaded {
        return Err(Outcome::refuse(
            "the upload for this template is already in progress or done.",
        ));
    }
    upload.state = UploadState::UploadInProgress;
    Ok(length)
}

/// A received image: where it is, its size and checksums.
pub struct Received {
    pub path: PathBuf,
    pub virtual_size: u64,
    pub md5: String,
    pub sha256: String,
}

/// Streams the file part of the body into `dir/disk.qcow2`.
pub async fn receive(req: Request<Incoming>, length: u64, dir: &Path) -> Result<Received, Outcome> {
    let internal = |text: String| Outcome {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        text,
    };
    let boundary = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("multipart/form-data"))
        .and_then(|v| {
            v.split(';')
                .find_map(|p| p.trim().strip_prefix("boundary="))
        })
        .map(|b| b.trim_matches('"').to_string())
        .ok_or_else(|| Outcome::refuse("the upload is not multipart/form-data with a boundary."))?;
    std::fs::create_dir_all(dir).map_err(|e| internal(format!("cannot store the image: {e}")))?;
    let part = dir.join("disk.qcow2.part");
    let file = std::fs::File::create(&part)
        .map_err(|e| internal(format!("cannot store the image: {e}")))?;
    let mut parser = Multipart::new(&boundary, std::io::BufWriter::new(file));
    let mut body = req.into_body();
    let mut seen: u64 = 0;
    let result = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| {
                internal("file receive failed or connection closed prematurely.".into())
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen += data.len() as u64;
            if seen > length {
                return Err(Outcome::refuse(
                    "the body is longer than its Content-Length.",
                ));
            }
            parser
                .feed(&data)
                .map_err(|e| internal(format!("cannot store the image: {e}")))?;
        }
        if seen < length {
            return Err(internal(
                "file receive failed or connection closed prematurely.".into(),
            ));
        }
        parser.finish()
    }
    .await;
    let (md5, sha256) = match result {
        Ok(sums) => sums,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    let header = read_head(&part).map_err(|e| internal(format!("cannot read the image: {e}")))?;
    let checked = qcow2_size(&header);
    let virtual_size = match checked {
        Ok(n) => n,
        Err(text) => {
            let _ = std::fs::remove_file(&part);
            return Err(Outcome::refuse(text));
        }
    };
    let path = dir.join("disk.qcow2");
    std::fs::rename(&part, &path).map_err(|e| internal(format!("cannot store the image: {e}")))?;
    Ok(Received {
        path,
        virtual_size,
        md5,
        sha256,
    })
}

/// Whether the received image matches the checksum given at registration.
pub fn checksum_matches(given: &str, got: &Received) -> Result<(), String> {
    let (algorithm, want) = checksum_of(given).map_err(|e| e.text)?;
    let have = if algorithm == "MD5" {
        &got.md5
    } else {
        &got.sha256
    };
    if *have == want {
        Ok(())
    } else {
        Err(format!(
            "checksum mismatch: the template was registered with {algorithm} {want}, the uploaded file has {have}"
        ))
    }
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(32);
    std::fs::File::open(path)?.take(32).read_to_end(&mut head)?;
    Ok(head)
}

/// The virtual size of a qcow2 image from its header; a file that is not
/// qcow2, or one with a backing file (which would read another file on the
/// storage), is refused as the servlet's format check does.
fn qcow2_size(head: &[u8]) -> Result<u64, String> {
    if head.len() < 32 || &head[..4] != b"QFI\xfb" {
        return Err(
            "File type mismatch between the sent file and the actual content. Received: not QCOW2"
                .into(),
        );
    }
    let be = |r: std::ops::Range<usize>| {
        head[r]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    };
    if be(8..16) != 0 {
        return Err("the image has a backing file; a template must be self-contained".into());
    }
    Ok(be(24..32))
}

/// Pulls the first file part out of a multipart body as it streams by,
/// hashing what it writes.
struct Multipart<W: Write> {
    /// `\r\n--boundary`: what ends a part.
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    state: PartState,
    out: W,
    md5: Md5,
    sha256: Sha256,
}

#[derive(PartialEq)]
enum PartState {
    /// Before the file part's content (preamble, part headers, other parts).
    Headers,
    Content,
    Done,
}

impl<W: Write> Multipart<W> {
    fn new(boundary: &str, out: W) -> Self {
        Multipart {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            // The first boundary has no CRLF before it; pretend it has.
            buf: b"\r\n".to_vec(),
            state: PartState::Headers,
            out,
            md5: Md5::new(),
            sha256: Sha256::new(),
        }
    }

    fn feed(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(data);
        loop {
            match self.state {
                PartState::Done => {
                    self.buf.clear();
                    return Ok(());
                }
                PartState::Headers => {
                    // A part: delimiter, headers, blank line. Anything before
                    // the file part (form fields) is skipped.
                    let Some(start) = find(&self.buf, &self.delimiter) else {
                        let keep = self.buf.len().min(self.delimiter.len());
                        self.buf.drain(..self.buf.len() - keep);
                        return Ok(());
                    };
                    let Some(end) = find(&self.buf[start..], b"\r\n\r\n") else {
                        if self.buf.len() - start > 64 * 1024 {
                            return Err(std::io::Error::other("part headers over 64 KiB"));
                        }
                        return Ok(());
                    };
                    let headers =
                        String::from_utf8_lossy(&self.buf[start..start + end]).to_lowercase();
                    let is_file = headers.contains("filename=");
                    self.buf.drain(..start + end + 4);
                    // A form field's value is skipped: the next delimiter ends it.
                    if is_file {
                        self.state = PartState::Content;
                    }
                }
                PartState::Content => {
                    if let Some(end) = find(&self.buf, &self.delimiter) {
                        let content = self.buf[..end].to_vec();
                        self.write(&content)?;
                        self.state = PartState::Done;
                        continue;
                    }
                    // Keep what could be the start of the delimiter.
                    let safe = self.buf.len().saturating_sub(self.delimiter.len());
                    let content: Vec<u8> = self.buf.drain(..safe).collect();
                    self.write(&content)?;
                    return Ok(());
                }
            }
        }
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.md5.update(data);
        self.sha256.update(data);
        self.out.write_all(data)
    }

    /// The MD5 and SHA-256 of the file part, hex.
    fn finish(mut self) -> Result<(String, String), Outcome> {
        if self.state != PartState::Done {
            return Err(Outcome {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                text: "received entity is not a file".into(),
            });
        }
        self.out.flush().map_err(|e| Outcome {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            text: format!("cannot store the image: {e}"),
        })?;
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        Ok((hex(&self.md5.finalize()), hex(&self.sha256.finalize())))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &[u8], chunk: usize) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut m = Multipart::new("XyZ", &mut out);
        for c in body.chunks(chunk) {
            m.feed(c).map_err(|e| e.to_string())?;
        }
        m.finish().map_err(|o| o.text)?;
        Ok(out)
    }

    #[test]
    fn the_file_part_is_taken_whole_whatever_the_chunking() {
        let content: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"disk.qcow2\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
        body.extend_from_slice(&content);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        for chunk in [1, 3, 7, 64, 4096, 100_000] {
            assert_eq!(parse(&body, chunk).unwrap(), content, "chunk {chunk}");
        }
    }

    #[test]
    fn a_body_without_a_file_part_is_not_a_file() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--XyZ--\r\n";
        assert_eq!(parse(body, 5).unwrap_err(), "received entity is not a file");
    }

    #[test]
    fn only_self_contained_qcow2_images_pass() {
        let mut head = b"QFI\xfb\0\0\0\x03".to_vec();
        head.extend_from_slice(&[0; 16]);
        head.extend_from_slice(&(3u64 << 30).to_be_bytes());
        assert_eq!(qcow2_size(&head), Ok(3 << 30));
        let mut backed = head.clone();
        backed[15] = 0x90;
        assert!(qcow2_size(&backed).unwrap_err().contains("backing file"));
        assert!(qcow2_size(b"not an image, just some text....")
            .unwrap_err()
            .contains("File type mismatch"));
    }
}
