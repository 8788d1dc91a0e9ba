//! Browser upload of a template (`getUploadParamsForTemplate`): the API
//! call registers the template and answers a signed POST; the image then
//! goes as multipart/form-data straight to the secondary storage's upload
//! servlet, with the signature in headers (`X-signature`, `X-metadata`,
//! `X-expires`) and a `Content-Length` (the servlet refuses a body
//! without one). The file is streamed, never read into memory.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use tokio::io::AsyncReadExt;

use crate::client::{http_builder, Client};
use crate::error::Error;
use crate::params::Params;
use crate::response;

/// The most of the upload server's answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// Where and how to POST a template's image. The signature lets anyone
/// upload to this template until `expires`: never printed.
#[derive(Clone, Deserialize)]
pub struct UploadParams {
    /// The template's id.
    pub id: String,
    #[serde(rename = "postURL")]
    pub post_url: String,
    pub metadata: String,
    pub expires: String,
    pub signature: String,
}

impl fmt::Debug for UploadParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadParams")
            .field("id", &self.id)
            .field("post_url", &self.post_url)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Why an upload POST failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The servlet refused or failed; its answer is plain text.
    #[error("the upload server answered HTTP {status}: {text}")]
    Refused { status: u16, text: String },
    #[error("the upload did not complete: {0}")]
    Transport(String),
    #[error(transparent)]
    Config(#[from] Error),
}

impl Client {
    /// `getUploadParamsForTemplate`: registers a template (not ready until
    /// its image is uploaded) and returns where to POST the image.
    pub async fn get_upload_params_for_template(
        &self,
        params: &Params,
    ) -> Result<UploadParams, Error> {
        let command = "getUploadParamsForTemplate";
        let result = self.call(command, params).await?;
        let inner = response::find_key(&result, "getuploadparams").unwrap_or(&result);
        response::typed(command, inner)
    }

    /// POSTs `file` to the signed URL, calling `progress` with the bytes
    /// sent so far.
    pub async fn upload_file(
        &self,
        target: &UploadParams,
        file: &Path,
        progress: impl Fn(u64) + Send + Sync + 'static,
    ) -> Result<(), UploadError> {
        let read_err = |source| UploadError::Read {
            path: file.display().to_string(),
            source,
        };
        let f = tokio::fs::File::open(file).await.map_err(read_err)?;
        let size = f.metadata().await.map_err(read_err)?.len();
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().replace(['"', '\r', '\n'], "_"))
            .unwrap_or_else(|| "image".into());
        let mut random = [0u8; 12];
        rand::Rng::fill(&mut rand::thread_rng(), &mut random);
        let boundary: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let boundary = format!("box-upload-{boundary}");
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let length = head.len() as u64 + size + tail.len() as u64;

        // Exactly `size` bytes of the file: a file that grows meanwhile
        // must not make the body longer than announced.
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = sent.clone();
        let file_stream = tokio_util::io::ReaderStream::with_capacity(f.take(size), 256 * 1024);
        let file_stream = futures_map(file_stream, move |n| {
            let total = counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
            progress(total);
        });
        let body = reqwest::Body::wrap_stream(chain(
            bytes_once(head.into_bytes()),
            file_stream,
            bytes_once(tail.into_bytes()),
        ));
        // No overall timeout, and no read timeout either (it would also
        // run while the body is being written): a big image over a slow
        // link takes as long as it takes.
        let http = http_builder(self.config())?
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let answer = http
            .post(&target.post_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header(reqwest::header::CONTENT_LENGTH, length)
            .header("X-signature", &target.signature)
            .header("X-metadata", &target.metadata)
            .header("X-expires", &target.expires)
            .body(body)
            .send()
            .await
            .map_err(|e| UploadError::Transport(e.without_url().to_string()))?;
        let status = answer.status().as_u16();
        // The servlet answers a line of text; a server that sends more is
        // not read further.
        let mut answer = answer;
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = answer.chunk().await {
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER - body.len())]);
            if body.len() >= MAX_ANSWER {
                break;
            }
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        if !(200..300).contains(&status) {
            let text: String = text.trim().chars().take(500).collect();
            return Err(UploadError::Refused { status, text });
        }
        if sent.load(std::sync::atomic::Ordering::Relaxed) != size {
            return Err(UploadError::Transport(format!(
                "{} changed while it was sent",
                file.display()
            )));
        }
        Ok(())
    }
}

type Chunk = Result<bytes::Bytes, std::io::Error>;

fn bytes_once(b: Vec<u8>) -> impl futures_util::Stream<Item = Chunk> {
    futures_util::stream::once(async move { Ok(bytes::Bytes::from(b)) })
}

fn futures_map(
    s: impl futures_util::Stream<Item = Chunk>,
    mut seen: impl FnMut(u64) + Send + 'static,
) -> impl futures_util::Stream<Item = Chunk> {
    futures_util::StreamExt::map(s, move |c| {
        if let Ok(b) = &c {
            seen(b.len() as u64);
        }
        c
    })
}

fn chain(
    a: impl futures_util::Stream<Item = Chunk>,
    b: impl futures_util::Stream<Item = Chunk>,
    c: impl futures_util::Stream<Item = Chunk>,
) -> impl futures_util::Stream<Item = Chunk> {
    use futures_util::StreamExt;
    a.chain(b).chain(c)
}
