//! The HTTP side: `/client/api` over GET and form POST, authentication,
//! fault injection, the async job runner and the state file.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::api::upload::UploadSite;
use crate::api::{self, Ctx};
use crate::auth::{self, Credentials};
use crate::backing::{self, Boot, QemuBacking};
use crate::clock;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::jobs;
use crate::jobs::Action;
use crate::model::{Cloud, UploadState};
use crate::params::Params;
use crate::seed;
use crate::store::{Store, StoreError};
use crate::upload;

/// Form bodies beyond this are refused; 32 KB of user data fits easily.
const MAX_BODY: usize = 1024 * 1024;

/// Reads remembered between two changes of the cloud.
const MAX_ANSWERS: usize = 4096;

/// Everything needed to run a simulator, without the command line.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub credentials: Credentials,
    pub state_dir: Option<PathBuf>,
    pub job_duration: Duration,
    pub faults: Faults,
    pub verbose: bool,
    /// Real machines behind the VMs (`--backing qemu`).
    pub backing: Option<Arc<QemuBacking>>,
    /// Domains, accounts and projects of a fresh cloud (`tenancy.rs`).
    pub layout: crate::tenancy::Layout,
    /// VPCs of a fresh cloud (`--vpc`, `api/vpc.rs`).
    pub vpcs: Vec<crate::api::vpc::VpcSpec>,
    /// How long an upload's signed POST stays valid (`upload.rs`).
    pub upload_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("accepting connections failed")]
    Accept(#[source] std::io::Error),
    #[error(transparent)]
    Layout(#[from] crate::tenancy::LayoutError),
    #[error("{0}")]
    Vpc(String),
    #[error("cannot create a folder for uploaded templates")]
    Uploads(#[source] std::io::Error),
}

struct State {
    cloud: Cloud,
    /// Bumped on every change, so the state file is never rolled back.
    generation: u64,
    /// Answers of reads since the last change, by command and parameters
    /// (signature and expiry aside): clients poll the same lists over and
    /// over, and rendering them dominates the simulator's cost.
    answers: HashMap<String, Bytes>,
}

impl State {
    fn changed(&mut self) {
        self.generation += 1;
        self.answers.clear();
    }
}

/// Commands that never change the cloud, whose answers may be reused.
fn is_read(command: &str) -> bool {
    if command.starts_with("getUploadParamsFor") {
        return false;
    }
    command.starts_with("list") || command.starts_with("get") || command == "queryAsyncJobResult"
}

/// What identifies a read's answer: the parameters that are not about
/// authentication, by lowercase name (as the commands see them), sorted.
fn answer_key(pairs: &[(String, String)]) -> String {
    let mut kept: Vec<(String, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.to_lowercase(), v.as_str()))
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "signature" | "expires" | "signatureversion" | "apikey"
            )
        })
        .collect();
    // Stable, so the first of repeated names stays first, as Params keeps it.
    kept.sort_by(|a, b| a.0.cmp(&b.0));
    kept.dedup_by(|a, b| a.0 == b.0);
    let mut key = String::new();
    for (k, v) in kept {
        key.push_str(&k);
        key.push('=');
        key.push_str(v);
        key.push('\n');
    }
    key
}

struct Sim {
    state: Mutex<State>,
    credentials: Credentials,
    faults: Faults,
    job_duration: Duration,
    store: Option<Store>,
    verbose: bool,
    backing: Option<Arc<QemuBacking>>,
    upload: UploadSite,
    /// Uploaded images: `<state>/templates`, else a temporary folder.
    uploads_dir: PathBuf,
    _uploads_temp: Option<tempfile::TempDir>,
}

/// A simulator bound to its port, not yet serving.
pub struct Bound {
    sim: Arc<Sim>,
    listener: TcpListener,
}

/// Why the connection is closed without an answer (`--drop`).
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct Dropped;

impl Bound {
    pub async fn new(config: Config) -> Result<Bound, ServerError> {
        let store = config.state_dir.as_deref().map(Store::open).transpose()?;
        let cloud = match &store {
            Some(s) => s.load()?,
            None => None,
        };
        let fresh = cloud.is_none();
        let cloud = match cloud {
            Some(c) => c,
            None => {
                let mut c = seed::cloud();
                c.apply_layout(&config.layout)?;
                crate::api::vpc::seed_all(&mut c, &config.vpcs).map_err(ServerError::Vpc)?;
                c
            }
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let base_url = match listener.local_addr() {
            Ok(a) => format!("http://{a}"),
            Err(source) => {
                return Err(ServerError::Bind {
                    addr: config.listen,
                    source,
                })
            }
        };
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut key);
        let upload = UploadSite {
            base_url,
            ttl_secs: config.upload_ttl.as_secs() as i64,
            key: key.iter().map(|b| format!("{b:02x}")).collect(),
        };
        let (uploads_dir, uploads_temp) = match &config.state_dir {
            Some(d) => (d.join("templates"), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("cs-sim-uploads-")
                    .tempdir()
                    .map_err(ServerError::Uploads)?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let sim = Arc::new(Sim {
            state: Mutex::new(State {
                cloud,
                generation: 1,
                answers: HashMap::new(),
            }),
            credentials: config.credentials,
            faults: config.faults,
            job_duration: config.job_duration,
            store,
            verbose: config.verbose,
            backing: config.backing,
            upload,
            uploads_dir,
            _uploads_temp: uploads_temp,
        });
        if fresh {
            sim.save_now();
        }
        Ok(Bound { sim, listener })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then writes the state a last time.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Bound { sim, listener } = self;
        // Jobs that were pending when the last run stopped finish now.
        let pending: Vec<(String, u64)> = sim
            .lock()
            .cloud
            .jobs
            .values()
            .filter(|j| j.status == 0)
            .map(|j| (j.id.clone(), j.due))
            .collect();
        for (id, due) in pending {
            spawn_job(sim.clone(), id, due);
        }
        if let Some(b) = sim.backing.clone() {
            tokio::spawn(sim.clone().watch_power());
            // Machines that were running when the last run stopped boot again.
            let boots: Vec<Boot> = {
                let st = sim.lock();
                st.cloud
                    .vms
                    .iter()
                    .filter(|v| v.state == "Running")
                    .filter_map(|v| Boot::of(&st.cloud, &v.id))
                    .collect()
            };
            let sim = sim.clone();
            tokio::spawn(async move {
                for boot in boots {
                    if let Err(e) = b.start(&boot).await {
                        eprintln!("cloudstack-sim: cannot boot {}: {e}", boot.name);
                    }
                }
                sim.sync_network().await;
            });
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, _) = match accepted {
                        Ok(a) => a,
                        // Out of file descriptors and the like: keep serving.
                        Err(e) if is_transient(&e) => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                        Err(e) => return Err(ServerError::Accept(e)),
                    };
                    let _ = stream.set_nodelay(true);
                    let sim = sim.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| {
                            let sim = sim.clone();
                            async move { sim.handle(req).await }
                        });
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
            }
        }
        sim.save_now();
        if let Some(b) = &sim.backing {
            b.stop_all().await;
        }
        Ok(())
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(24)
}

fn spawn_job(sim: Arc<Sim>, id: String, due: u64) {
    tokio::spawn(async move {
        let now = clock::now_ms();
        if due > now {
            tokio::time::sleep(Duration::from_millis(due - now)).await;
        }
        sim.finish_job(&id).await;
    });
}

impl Sim {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; serve on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn finish_job(self: &Arc<Self>, id: &str) {
        let (command, action, boot) = {
            let st = self.lock();
            let Some(job) = st.cloud.jobs.get(id) else {
                return;
            };
            let vm = match &job.action {
                Action::VmDeploy { vm, .. } | Action::VmStart { vm } => Boot::of(&st.cloud, vm),
                _ => None,
            };
            (job.command.clone(), job.action.clone(), vm)
        };
        let mut fault = None;
        if let Some(b) = &self.backing {
            fault = self
                .back(b, &action, boot.as_ref())
                .await
                .err()
                .map(ApiError::internal);
        }
        let fault = fault.or_else(|| self.faults.job_failure(&command));
        if let (Some(b), Some(_), Some(boot)) = (&self.backing, &fault, &boot) {
            // The job failed after all: the machine does not stay up.
            b.stop(&boot.id).await;
        }
        let snapshot = {
            let mut st = self.lock();
            jobs::complete(&mut st.cloud, id, clock::now_ms(), fault);
            st.changed();
            self.snapshot(&st)
        };
        self.write(snapshot);
        self.sync_network().await;
    }

    /// What a finished job does to the real machine, before the cloud's
    /// state says it is done.
    async fn back(
        &self,
        b: &QemuBacking,
        action: &Action,
        boot: Option<&Boot>,
    ) -> Result<(), String> {
        match action {
            Action::VmDeploy { start: true, .. } | Action::VmStart { .. } => match boot {
                Some(boot) => b.start(boot).await,
                None => Err("the VM is gone".into()),
            },
            Action::VmStop { vm } => {
                b.stop(vm).await;
                Ok(())
            }
            Action::VmReboot { vm } => {
                b.reboot(vm).await;
                Ok(())
            }
            Action::VmDestroy { vm, expunge, .. } => {
                if *expunge {
                    b.remove(vm).await;
                } else {
                    b.stop(vm).await;
                }
                Ok(())
            }
            Action::VmExpunge { vm } => {
                b.remove(vm).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A backed VM whose guest powered itself off ends Stopped, as a real
    /// cloud's power-state sync reports it.
    async fn watch_power(self: Arc<Self>) {
        let Some(b) = self.backing.clone() else {
            return;
        };
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let off = b.powered_off().await;
            if off.is_empty() {
                continue;
            }
            let snapshot = {
                let mut st = self.lock();
                for id in &off {
                    if let Some(vm) = st.cloud.vm_mut(id).filter(|v| v.state == "Running") {
                        vm.state = "Stopped".into();
                        if self.verbose {
                            eprintln!("cloudstack-sim: {} powered off by itself: Stopped", vm.name);
                        }
                    }
                }
                st.changed();
                self.snapshot(&st)
            };
            self.write(snapshot);
            self.sync_network().await;
        }
    }

    /// Makes the real machines' forwarded ports match the network rules.
    async fn sync_network(self: &Arc<Self>) {
        let Some(b) = &self.backing else { return };
        let sim = self.clone();
        b.reconcile(move || backing::forwards(&sim.lock().cloud))
            .await;
    }

    fn snapshot(&self, st: &State) -> Option<(u64, Vec<u8>)> {
        self.store.as_ref()?;
        serde_json::to_vec(&st.cloud)
            .ok()
            .map(|b| (st.generation, b))
    }

    fn write(&self, snapshot: Option<(u64, Vec<u8>)>) {
        if let (Some(store), Some((generation, bytes))) = (&self.store, snapshot) {
            if let Err(e) = store.save(generation, &bytes) {
                eprintln!("cloudstack-sim: {e}");
            }
        }
    }

    fn save_now(&self) {
        let snapshot = self.snapshot(&self.lock());
        self.write(snapshot);
    }

    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Dropped> {
        if self.faults.drop_connection() {
            return Err(Dropped);
        }
        if !self.faults.latency.is_zero() {
            tokio::time::sleep(self.faults.latency).await;
        }
        if let Some(id) = req.uri().path().strip_prefix("/upload/") {
            let id = id.to_string();
            return Ok(self.upload(&id, req).await);
        }
        if req.uri().path() != "/client/api" {
            return Ok(plain(StatusCode::NOT_FOUND, "Not Found"));
        }
        let post = match *req.method() {
            Method::GET => false,
            Method::POST => true,
            _ => return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")),
        };
        let mut pairs: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if post {
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return Ok(plain(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "Request Entity Too Large",
                    ))
                }
            };
            if is_form {
                pairs.extend(form_urlencoded::parse(&body).into_owned());
            }
        }
        let (status, body, command) = self.answer(&pairs, post);
        if self.verbose {
            eprintln!(
                "cloudstack-sim: {} {} -> {}",
                if post { "POST" } else { "GET" },
                command.as_deref().unwrap_or("-"),
                status
            );
        }
        Ok(json_response(status, body))
    }

    /// The status and body for one call; the command name for the log.
    fn answer(
        self: &Arc<Self>,
        pairs: &[(String, String)],
        post: bool,
    ) -> (u16, Bytes, Option<String>) {
        let command = pairs
            .iter()
            .find(|(k, _)| k == "command")
            .map(|(_, v)| v.clone());
        let Some(command) = command else {
            let e = ApiError::new(400, None, "no command specified");
            return (400, to_bytes(&api::error_envelope(None, &e)), None);
        };
        let fail = |e: ApiError| {
            (
                e.code,
                to_bytes(&api::error_envelope(Some(&command), &e)),
                Some(command.clone()),
            )
        };
        let now_secs = (clock::now_ms() / 1000) as i64;
        let known = || match api::find(&command) {
            Some(_) => Ok(()),
            None => Err(ApiError::unknown_command(&command)),
        };
        match auth::verify(&self.credentials, pairs, now_secs, known) {
            Err(e) => return fail(e),
            Ok(Err(refusal)) => {
                if self.verbose {
                    eprintln!("cloudstack-sim: refused {command}: {refusal:?}");
                }
                return fail(ApiError::unauthorized());
            }
            Ok(Ok(())) => {}
        }
        let Some(cmd) = api::find(&command) else {
            return fail(ApiError::unknown_command(&command));
        };
        if self.faults.throttled() {
            return fail(ApiError::api_limit());
        }
        if let Some(e) = self.faults.call_failure(cmd.name) {
            return fail(e);
        }
        let params = Params::new(cmd.name, pairs);
        let read = is_read(cmd.name);
        let key = if read {
            answer_key(pairs)
        } else {
            String::new()
        };
        let (result, started, snapshot) = {
            let mut st = self.lock();
            if let Some(body) = st.answers.get(&key).filter(|_| read) {
                return (200, body.clone(), Some(command));
            }
            let now = clock::now_ms();
            let mut ctx = Ctx::new(
                &mut st.cloud,
                now,
                self.job_duration.as_millis() as u64,
                post,
            );
            ctx.upload = Some(self.upload.clone());
            let result = api::call(&mut ctx, cmd, &params);
            let started = std::mem::take(&mut ctx.started);
            let result = result.map(|r| to_bytes(&api::envelope(cmd.name, r)));
            let snapshot = if !read {
                st.changed();
                self.snapshot(&st)
            } else {
                if let Ok(body) = &result {
                    if st.answers.len() >= MAX_ANSWERS {
                        st.answers.clear();
                    }
                    st.answers.insert(key, body.clone());
                }
                None
            };
            (result, started, snapshot)
        };
        self.write(snapshot);
        for (id, due) in started {
            spawn_job(self.clone(), id, due);
        }
        if !read && self.backing.is_some() {
            let sim = self.clone();
            tokio::spawn(async move { sim.sync_network().await });
        }
        match result {
            Ok(body) => (200, body, Some(command)),
            Err(e) => fail(e),
        }
    }
}

impl Sim {
    /// `POST /upload/<id>`: an image for a template registered with
    /// `getUploadParamsForTemplate` (`upload.rs`).
    async fn upload(self: &Arc<Self>, id: &str, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::POST {
            return text(
                StatusCode::BAD_REQUEST,
                "only post requests are allowed".into(),
            );
        }
        let admitted = {
            let mut st = self.lock();
            let now = (clock::now_ms() / 1000) as i64;
            let r = upload::admit(&mut st.cloud, &self.upload, id, &req, now);
            st.changed();
            (r, self.snapshot(&st))
        };
        self.write(admitted.1);
        let length = match admitted.0 {
            Ok(n) => n,
            Err(o) => return self.log_upload(id, o),
        };
        let dir = self.uploads_dir.join(id);
        let received = upload::receive(req, length, &dir).await;
        let (outcome, snapshot) = {
            let mut st = self.lock();
            let Some(t) = st.cloud.templates.iter_mut().find(|t| t.id == id) else {
                let _ = std::fs::remove_dir_all(&dir);
                return text(StatusCode::GONE, "the template was deleted".into());
            };
            let checked = received.and_then(|r| match &t.checksum {
                Some(c) => upload::checksum_matches(c, &r).map(|_| r).map_err(|text| {
                    let _ = std::fs::remove_dir_all(&dir);
                    upload::Outcome {
                        status: StatusCode::INTERNAL_SERVER_ERROR,
                        text,
                    }
                }),
                None => Ok(r),
            });
            let outcome = match checked {
                Ok(r) => {
                    t.size = r.virtual_size;
                    if t.checksum.is_none() {
                        t.checksum = Some(r.md5.clone());
                    }
                    if let Some(u) = t.upload.as_mut() {
                        u.state = UploadState::Uploaded;
                        u.image = Some(r.path);
                    }
                    upload::Outcome {
                        status: StatusCode::OK,
                        text: "upload successful.".into(),
                    }
                }
                Err(o) => {
                    if let Some(u) = t.upload.as_mut() {
                        u.state = UploadState::UploadError;
                        u.error = Some(o.text.clone());
                    }
                    o
                }
            };
            st.changed();
            (outcome, self.snapshot(&st))
        };
        self.write(snapshot);
        self.log_upload(id, outcome)
    }

    fn log_upload(&self, id: &str, o: upload::Outcome) -> Response<Full<Bytes>> {
        if self.verbose {
            eprintln!(
                "cloudstack-sim: POST /upload/{id} -> {}: {}",
                o.status.as_u16(),
                o.text
            );
        }
        text(o.status, o.text)
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    r
}

fn to_bytes(body: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(body).unwrap_or_default())
}

fn json_response(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}
