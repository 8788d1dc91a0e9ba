//! The HTTP client: signing, transport, retries of reads, pagination and
//! async-job polling. Typed commands (in `commands.rs`) are built on
//! [`Client::call`] and [`Client::call_and_wait`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::config::ClientConfig;
use crate::error::Error;
use crate::job::{jobid_of, AsyncJob, JobState};
use crate::params::Params;
use crate::poller::{self, SharedPoller};
use crate::raw::{self, FirstPage, RawAnswer};
use crate::response;
use crate::signing;
use crate::throttle::Throttle;

/// Above this many bytes in one value, or in the whole query, a read goes as
/// a POST too: servers and proxies cap URL length (user data over GET is
/// limited to 4096 characters).
const MAX_GET_VALUE: usize = 1024;
const MAX_GET_QUERY: usize = 4000;

/// How many times a request the cloud throttled (429: refused before it
/// acted, read or write) is sent in all. A storm of 429s is ridden out
/// while the throttle halves the requests in flight.
const THROTTLED_ATTEMPTS: u32 = 16;

/// One API request as the observer sees it: secrets already redacted.
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub command: String,
    pub method: &'static str,
    /// Parameters as sent, with apiKey, signature, secrets and user data
    /// replaced by `<redacted>`.
    pub params: Vec<(String, String)>,
    /// The HTTP status; `None` when no answer came.
    pub status: Option<u16>,
    pub latency: Duration,
    /// 1 for the first try of a request, 2 for its first retry...
    pub attempt: u32,
}

pub type Observer = Arc<dyn Fn(&CallRecord) + Send + Sync>;

/// The parameters a client adds to a command's calls, unless the call gives
/// them itself (e.g. the project every call of an application acts in).
pub type Defaults = Arc<dyn Fn(&str) -> Vec<(String, String)> + Send + Sync>;

/// What `--dry-run` shows: the request exactly as it would be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    pub method: &'static str,
    pub string_to_sign: String,
    /// The signed URL (for a POST, the URL a GET would use; the body is the same query).
    pub url: String,
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    config: Arc<ClientConfig>,
    observer: Option<Observer>,
    defaults: Option<Defaults>,
    /// Shared by every clone: requests in flight, sized to the cloud's 429s.
    throttle: Arc<Throttle>,
    /// Shared by every clone, when set: one poller for all waited jobs.
    poller: Option<Arc<SharedPoller>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("observer", &self.observer.is_some())
            .field("defaults", &self.defaults.is_some())
            .finish()
    }
}

struct Prepared {
    method: &'static str,
    url: String,
    body: Option<String>,
    string_to_sign: String,
    get_url: String,
    expires_used: bool,
    redacted: Vec<(String, String)>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        if !(config.endpoint.starts_with("http://") || config.endpoint.starts_with("https://")) {
            return Err(Error::Config(format!(
                "the endpoint `{}` must start with http:// or https://",
                config.endpoint
            )));
        }
        if config.api_key.is_empty() || config.secret_key.is_empty() {
            return Err(Error::Config(
                "the API key and the secret key must not be empty".into(),
            ));
        }
        if config.page_size == 0 || config.page_size > 500 {
            return Err(Error::Config(
                "the page size must be between 1 and 500".into(),
            ));
        }
        let http = http_builder(&config)?
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            config: Arc::new(config),
            observer: None,
            defaults: None,
            throttle: Arc::default(),
            poller: None,
        })
    }

    /// Calls `observer` after every HTTP request (for `-vv` logging).
    pub fn with_observer(mut self, observer: impl Fn(&CallRecord) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Adds `defaults(command)` to every call of `command` that does not
    /// give those parameters itself.
    pub fn with_defaults(
        mut self,
        defaults: impl Fn(&str) -> Vec<(String, String)> + Send + Sync + 'static,
    ) -> Self {
        self.defaults = Some(Arc::new(defaults));
        self
    }

    /// Every job this client and its clones wait for is polled by one
    /// shared poller (one `listAsyncJobs` per tick for all of them) instead
    /// of each waiter polling its own job.
    pub fn with_job_poller(mut self) -> Self {
        self.poller = Some(poller::shared());
        self
    }

    pub(crate) fn without_poller(&self) -> Self {
        Client {
            poller: None,
            ..self.clone()
        }
    }

    /// How many requests this client lets be in flight at once now.
    pub fn request_limit(&self) -> usize {
        self.throttle.limit()
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The request that `call` would send, without sending it. Explicit
    /// `expires` and `signatureVersion` parameters are used as given.
    pub fn dry_run(&self, command: &str, params: &Params) -> Result<DryRun, Error> {
        let p = self.prepare(command, params, SystemTime::now())?;
        Ok(DryRun {
            method: p.method,
            string_to_sign: p.string_to_sign,
            url: p.get_url,
        })
    }

    /// One API call; the object inside the `*response` key. Reads are
    /// retried on connection errors, 5xx and 429; writes are sent again
    /// only after a 429 (which CloudStack answers before acting).
    pub async fn call(&self, command: &str, params: &Params) -> Result<Value, Error> {
        self.call_parsed(command, params, |status, body, expires_used| {
            response::extract(command, status, &body, expires_used)
        })
        .await
    }

    /// `call` with the body read by `parse(status, body, expires_used)`,
    /// so typed lists skip the intermediate JSON tree and raw lists keep
    /// the body itself.
    async fn call_parsed<R>(
        &self,
        command: &str,
        params: &Params,
        parse: impl Fn(u16, Vec<u8>, bool) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let attempts = if is_read(command) {
            self.config.retry.attempts.max(1)
        } else {
            1
        };
        let mut attempt = 1;
        loop {
            // Prepared afresh each time so a retry carries a fresh `expires`.
            let prepared = self.prepare(command, params, SystemTime::now())?;
            match self.send(command, &prepared, attempt, &parse).await {
                Err(e)
                    if attempt < attempts && e.is_retryable_read()
                        || attempt < THROTTLED_ATTEMPTS && e.is_throttled() =>
                {
                    tokio::time::sleep(self.config.retry.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Like [`Client::call`], but when the command starts an async job, waits
    /// for it and returns its `jobresult` (e.g. `{"virtualmachine": {...}}`).
    pub async fn call_and_wait(&self, command: &str, params: &Params) -> Result<Value, Error> {
        let first = self.call(command, params).await?;
        match jobid_of(&first) {
            Some(jobid) => self.wait_job(command, &jobid).await,
            None => Ok(first),
        }
    }

    /// Polls `queryAsyncJobResult` with backoff until the job ends or the
    /// poll policy's timeout passes; the `jobresult` on success.
    pub async fn wait_job(&self, command: &str, jobid: &str) -> Result<Value, Error> {
        self.wait_job_since(command, jobid, Instant::now()).await
    }

    /// [`Client::wait_job`] for a wait that began at `start`: a caller that
    /// retries the wait after a failed poll keeps one deadline in all.
    pub async fn wait_job_since(
        &self,
        command: &str,
        jobid: &str,
        start: Instant,
    ) -> Result<Value, Error> {
        let policy = &self.config.jobs;
        if let Some(answer) = self.poller.as_ref().and_then(|p| p.watch(self, jobid)) {
            let left = policy.timeout.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, answer).await {
                Ok(Ok(Ok(job))) => {
                    if let JobState::Succeeded(result) = job.state(command)? {
                        return Ok(result);
                    }
                }
                Ok(Ok(Err(e))) => return Err(e),
                // The poller left this job to its waiter: poll below.
                Ok(Err(_)) => {}
                Err(_) => {
                    return Err(Error::JobTimeout {
                        command: command.to_string(),
                        jobid: jobid.to_string(),
                        limit: policy.timeout,
                    })
                }
            }
        }
        let mut n = 0;
        loop {
            let job = self.query_async_job_result(jobid).await?;
            if let JobState::Succeeded(result) = job.state(command)? {
                return Ok(result);
            }
            let waited = start.elapsed();
            if waited >= policy.timeout {
                return Err(Error::JobTimeout {
                    command: command.to_string(),
                    jobid: jobid.to_string(),
                    limit: policy.timeout,
                });
            }
            tokio::time::sleep(policy.delay(n).min(policy.timeout.saturating_sub(waited))).await;
            n += 1;
        }
    }

    pub async fn query_async_job_result(&self, jobid: &str) -> Result<AsyncJob, Error> {
        let command = "queryAsyncJobResult";
        let v = self
            .call(command, &Params::new().set("jobid", jobid))
            .await?;
        response::typed(command, &v)
    }

    /// Every item of a list command, across pages, under `key` (or under
    /// the response's only list when `key` is `None`). With an explicit
    /// `page` parameter only that page is fetched.
    pub async fn list_values(
        &self,
        command: &str,
        params: &Params,
        key: Option<&str>,
    ) -> Result<(Option<String>, Vec<Value>), Error> {
        let (single, page_size) = self.paging(params)?;
        let mut items = Vec::new();
        let mut found_key = key.map(str::to_string);
        let mut page = 1u32;
        loop {
            let p = paged(params, single, page, page_size);
            let v = self.call(command, &p).await?;
            if found_key.is_none() {
                found_key = response::list_key(&v);
            }
            let Some(k) = found_key.as_deref() else {
                // No list at all: an empty result (`{}`).
                break;
            };
            let total = v.get("count").and_then(response::as_u64).unwrap_or(0) as usize;
            let page_items = response::take_list(command, v, k)?;
            let got = page_items.len();
            items.extend(page_items);
            if single || got == 0 || items.len() >= total {
                break;
            }
            page += 1;
        }
        Ok((found_key, items))
    }

    /// A list command's items, typed.
    pub async fn list<T: serde::de::DeserializeOwned>(
        &self,
        command: &str,
        params: &Params,
        key: &str,
    ) -> Result<Vec<T>, Error> {
        let (single, page_size) = self.paging(params)?;
        let mut items = Vec::new();
        let mut page = 1u32;
        loop {
            let p = paged(params, single, page, page_size);
            let pg: response::Page<T> = self
                .call_parsed(command, &p, |status, body, expires_used| {
                    response::parse_page(command, status, &body, key, expires_used)
                })
                .await?;
            let got = pg.items.len();
            items.extend(pg.items);
            if single || got == 0 || items.len() >= pg.count.unwrap_or(0) as usize {
                return Ok(items);
            }
            page += 1;
        }
    }

    /// Whether `params` ask for one page, and the page size to use.
    fn paging(&self, params: &Params) -> Result<(bool, u32), Error> {
        let page_size = match params.get("pagesize") {
            Some(s) => s
                .parse()
                .map_err(|_| Error::Request(format!("pagesize must be a number, not `{s}`")))?,
            None => self.config.page_size,
        };
        Ok((params.contains("page"), page_size))
    }

    /// For raw calls (`box api`): a list command with all its pages merged
    /// as one response (`{"count": N, "<key>": [...]}`), its items kept as
    /// the bytes that arrived; anything else as `call_and_wait` (or `call`
    /// when `wait` is false) answers.
    ///
    /// The first request goes as typed, so commands named `list*` that do
    /// not page (`listCapabilities`) are answered unchanged; later pages use
    /// the first page's size, which is the server's default.
    pub async fn call_raw(
        &self,
        command: &str,
        params: &Params,
        wait: bool,
    ) -> Result<RawAnswer, Error> {
        if !command.starts_with("list") || params.contains("page") {
            return Ok(RawAnswer::Value(if wait {
                self.call_and_wait(command, params).await?
            } else {
                self.call(command, params).await?
            }));
        }
        let given_size = params.get("pagesize");
        // CloudStack wants `page` whenever `pagesize` is sent.
        let first_params = match given_size {
            Some(_) => params.clone().set("page", "1"),
            None => params.clone(),
        };
        let first = self
            .call_parsed(command, &first_params, |status, body, expires_used| {
                raw::first_page(command, status, body, expires_used)
            })
            .await?;
        let (key, count, first) = match first {
            FirstPage::List { key, count, page } => (key, count.unwrap_or(0) as usize, page),
            FirstPage::Other(v) => return Ok(RawAnswer::Value(v)),
        };
        let (_, default_size) = self.paging(params)?;
        let page_size = match given_size {
            Some(_) => default_size,
            None => first.len() as u32,
        };
        let mut got = first.len();
        let mut pages = vec![first];
        let mut page = 2u32;
        while got < count && page_size > 0 {
            let mut p = params.clone().set("page", page.to_string());
            if given_size.is_none() {
                p.push("pagesize", page_size.to_string());
            }
            let more = self
                .call_parsed(command, &p, |status, body, expires_used| {
                    raw::page(command, status, body, &key, expires_used)
                })
                .await?;
            if more.len() == 0 {
                break;
            }
            got += more.len();
            pages.push(more);
            page += 1;
        }
        Ok(RawAnswer::List { key, pages })
    }

    fn prepare(&self, command: &str, params: &Params, now: SystemTime) -> Result<Prepared, Error> {
        let mut all: Vec<(&str, String)> = Vec::with_capacity(params.len() + 5);
        all.push(("apiKey", self.config.api_key.clone()));
        all.push(("command", command.to_string()));
        all.push(("response", "json".to_string()));
        let mut seen: Vec<&str> = Vec::with_capacity(params.len());
        for (name, value) in params.iter() {
            if seen.contains(&name) {
                return Err(Error::Request(format!("parameter `{name}` is given twice")));
            }
            seen.push(name);
            if ["apikey", "command", "signature"].contains(&name.to_ascii_lowercase().as_str()) {
                return Err(Error::Request(format!(
                    "`{name}` is set by the client, not a parameter"
                )));
            }
            if name == "response" {
                if value != "json" {
                    return Err(Error::Request("only response=json is supported".into()));
                }
                continue;
            }
            all.push((name, value.to_string()));
        }
        let added = self
            .defaults
            .as_ref()
            .map(|d| d(command))
            .unwrap_or_default();
        for (name, value) in &added {
            if !params.contains(name) {
                all.push((name.as_str(), value.clone()));
            }
        }
        if self.config.signature_version == 3 {
            if !params.contains("signatureVersion") {
                all.push(("signatureVersion", "3".into()));
            }
            if !params.contains("expires") {
                all.push((
                    "expires",
                    signing::format_expires(now + self.config.expires),
                ));
            }
        }
        let expires_used = all.iter().any(|(n, _)| *n == "expires");
        let string_to_sign = signing::string_to_sign(all.iter().map(|(n, v)| (*n, v.as_str())));
        let signature = signing::sign_string(self.config.secret_key.expose(), &string_to_sign);

        let mut query = String::with_capacity(string_to_sign.len() + 64);
        let mut large = false;
        for (name, value) in &all {
            large |= value.len() > MAX_GET_VALUE;
            query.push_str(name);
            query.push('=');
            query.push_str(&signing::encode_value(value));
            query.push('&');
        }
        query.push_str("signature=");
        query.push_str(&signing::encode_value(&signature));
        large |= query.len() > MAX_GET_QUERY;

        let sep = if self.config.endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let get_url = format!("{}{sep}{query}", self.config.endpoint);
        let redacted = all
            .iter()
            .map(|(n, v)| (n.to_string(), redact(n, v)))
            .collect();
        let (method, url, body) = if is_read(command) && !large {
            ("GET", get_url.clone(), None)
        } else {
            // Everything in the body, nothing in the URL: a parameter sent
            // twice would be signed once and read twice.
            ("POST", self.config.endpoint.clone(), Some(query))
        };
        Ok(Prepared {
            method,
            url,
            body,
            string_to_sign,
            get_url,
            expires_used,
            redacted,
        })
    }

    async fn send<R>(
        &self,
        command: &str,
        p: &Prepared,
        attempt: u32,
        parse: &impl Fn(u16, Vec<u8>, bool) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let permit = self.throttle.acquire().await;
        let start = Instant::now();
        let request = match &p.body {
            None => self.http.get(&p.url),
            Some(body) => self
                .http
                .post(&p.url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body.clone()),
        };
        let outcome = match request.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                match self.read_body(command, resp).await {
                    Ok(body) => (Some(status), parse(status, body, p.expires_used)),
                    Err(e) => (Some(status), Err(e)),
                }
            }
            Err(e) => (None, Err(self.transport(command, e))),
        };
        permit.answered(outcome.0);
        if let Some(observer) = &self.observer {
            observer(&CallRecord {
                command: command.to_string(),
                method: p.method,
                params: p.redacted.clone(),
                status: outcome.0,
                latency: start.elapsed(),
                attempt,
            });
        }
        outcome.1
    }
}

impl Client {
    /// The body, read chunk by chunk and refused as soon as it passes
    /// `max_response_bytes` (or announces more): a server that never ends
    /// its answer must not grow memory without bound.
    async fn read_body(
        &self,
        command: &str,
        mut resp: reqwest::Response,
    ) -> Result<Vec<u8>, Error> {
        let limit = self.config.max_response_bytes;
        let too_large = |announced| Error::TooLarge {
            command: command.to_string(),
            limit,
            announced,
        };
        let announced = resp.content_length();
        if let Some(len) = announced.filter(|len| *len > limit) {
            return Err(too_large(Some(len)));
        }
        let mut body = Vec::with_capacity(announced.unwrap_or(0) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.transport(command, e))? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large(None));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport(&self, command: &str, e: reqwest::Error) -> Error {
        Error::Transport {
            command: command.to_string(),
            source: e.without_url(),
            timeout: self.config.timeout,
        }
    }
}

/// `params` with `page` and `pagesize` added, unless one page was asked for.
fn paged(params: &Params, single: bool, page: u32, page_size: u32) -> Params {
    let mut p = params.clone();
    if !single {
        p.push("page", page.to_string());
        if !params.contains("pagesize") {
            p.push("pagesize", page_size.to_string());
        }
    }
    p
}

/// The HTTP client settings every request shares (TLS roots, insecure,
/// connect timeout), without an overall timeout: an upload of a disk image
/// takes as long as it takes.
pub(crate) fn http_builder(config: &ClientConfig) -> Result<reqwest::ClientBuilder, Error> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .connect_timeout(config.timeout.min(Duration::from_secs(15)))
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .user_agent(concat!("box-cloudstack/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::Config(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::Config(format!("the CA file {} is not PEM: {e}", path.display()))
        })?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "the CA file {} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if config.insecure {
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// Reads are safe to repeat and go as GET; everything else changes state.
/// `getUploadParamsFor*` registers a template or volume: not a read.
pub fn is_read(command: &str) -> bool {
    if command.starts_with("getUploadParamsFor") {
        return false;
    }
    ["list", "query", "get"].iter().any(|prefix| {
        command
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
    })
}

fn redact(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower == "userdata" {
        return format!("<{} bytes redacted>", value.len());
    }
    // `signatureVersion` is harmless; only the signature itself is secret.
    if lower == "signature"
        || ["apikey", "secretkey", "password", "privatekey", "token"]
            .iter()
            .any(|s| lower.contains(s))
    {
        return "<redacted>".into();
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secret::Secret;

    fn client() -> Client {
        Client::new(ClientConfig::new(
            "http://127.0.0.1:1/client/api",
            "fnord",
            Secret::new("abracadabra"),
        ))
        .unwrap()
    }

    #[test]
    fn defaults_are_added_to_their_commands_unless_the_call_gives_them() {
        let c = client().with_defaults(|command| {
            if command == "listVirtualMachines" {
                vec![("projectid".to_string(), "p1".to_string())]
            } else {
                Vec::new()
            }
        });
        let d = c.dry_run("listVirtualMachines", &Params::new()).unwrap();
        assert!(
            d.string_to_sign.contains("projectid=p1"),
            "{}",
            d.string_to_sign
        );
        let d = c
            .dry_run("listVirtualMachines", &Params::from([("projectid", "p2")]))
            .unwrap();
        assert!(
            d.string_to_sign.contains("projectid=p2"),
            "{}",
            d.string_to_sign
        );
        assert!(!d.string_to_sign.contains("projectid=p1"));
        let d = c.dry_run("listZones", &Params::new()).unwrap();
        assert!(
            !d.string_to_sign.contains("projectid"),
            "{}",
            d.string_to_sign
        );
    }

    #[test]
    fn dry_run_with_explicit_version_and_expires_is_deterministic() {
        let params = Params::from([
            ("signatureVersion", "3"),
            ("expires", "2030-01-01T00:00:00+0000"),
        ]);
        let d = client().dry_run("listZones", &params).unwrap();
        assert_eq!(
            d.string_to_sign,
            "apikey=fnord&command=listzones&expires=2030-01-01t00%3a00%3a00%2b0000&response=json&signatureversion=3"
        );
        let sig = signing::sign_string("abracadabra", &d.string_to_sign);
        assert!(d
            .url
            .ends_with(&format!("&signature={}", signing::encode_value(&sig))));
        assert_eq!(d.url.matches("expires=").count(), 1);
        assert_eq!(d.method, "GET");
    }

    #[test]
    fn libcloud_vector_through_the_client() {
        let mut c = ClientConfig::new(
            "http://127.0.0.1:1/client/api",
            "fnord",
            Secret::new("abracadabra"),
        );
        c.signature_version = 2;
        let d = Client::new(c)
            .unwrap()
            .dry_run("listVirtualMachines", &Params::new())
            .unwrap();
        assert_eq!(
            d.string_to_sign,
            "apikey=fnord&command=listvirtualmachines&response=json"
        );
        assert!(
            d.url
                .ends_with("&signature=z%2Fa9Y7J52u48VpqIgiwaGUMCso0%3D"),
            "{}",
            d.url
        );
    }

    #[test]
    fn duplicate_and_reserved_parameters_are_refused() {
        let c = client();
        assert!(c
            .dry_run("listZones", &Params::from([("id", "1"), ("id", "2")]))
            .is_err());
        assert!(c
            .dry_run("listZones", &Params::from([("apikey", "x")]))
            .is_err());
        assert!(c
            .dry_run("listZones", &Params::from([("signature", "x")]))
            .is_err());
    }

    #[test]
    fn reads_are_get_writes_and_large_reads_are_post() {
        let c = client();
        let p = Params::new();
        assert_eq!(
            c.prepare("listZones", &p, SystemTime::now())
                .unwrap()
                .method,
            "GET"
        );
        assert_eq!(
            c.prepare("queryAsyncJobResult", &p, SystemTime::now())
                .unwrap()
                .method,
            "GET"
        );
        assert_eq!(
            c.prepare("deployVirtualMachine", &p, SystemTime::now())
                .unwrap()
                .method,
            "POST"
        );
        let big = Params::new().set("keyword", "x".repeat(5000));
        let prepared = c.prepare("listZones", &big, SystemTime::now()).unwrap();
        assert_eq!(prepared.method, "POST");
        assert!(!prepared.url.contains('?'));
        assert!(!is_read("listing"));
        assert!(is_read("getVMPassword"));
    }

    #[test]
    fn redaction_hides_keys_signature_and_userdata() {
        let c = client();
        let p = Params::new().set("userdata", "c2VjcmV0");
        let prepared = c
            .prepare("deployVirtualMachine", &p, SystemTime::now())
            .unwrap();
        let shown = format!("{:?}", prepared.redacted);
        assert!(
            !shown.contains("fnord") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        assert!(shown.contains(r#"("signatureVersion", "3")"#), "{shown}");
        assert_eq!(redact("signature", "abc"), "<redacted>");
        assert_eq!(redact("password", "abc"), "<redacted>");
    }

    #[test]
    fn client_debug_hides_the_secret() {
        assert!(!format!("{:?}", client()).contains("abracadabra"));
    }
}
