//! Polling async jobs: `queryAsyncJobResult` and `listAsyncJobs`.

use serde_json::Value;

use super::list::list;
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::params::Params;

pub fn query(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("jobid")?;
    let c = &*ctx.cloud;
    let job = c
        .jobs
        .get(id)
        .ok_or_else(|| ApiError::invalid(format!("Unable to find job by id {id}")))?;
    Ok(Reply::Value(job.render(c)))
}

pub fn list_jobs(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let items: Vec<Value> = c.jobs.values().map(|j| j.render(c)).collect();
    list(p, "asyncjobs", items)
}
