//! Reading the live state, and planning against it: the stage plan, apply and watch share.
//!
//! It reaches the API through [`ReadApi`], which has no call that writes, so planning cannot
//! change the organization by construction, and can be tested against an in-memory twin.

mod kept;
mod live;
#[cfg(test)]
mod tests;

use std::future::Future;

use secrecy::SecretString;

pub use kept::{KEPT_KEY_RETENTION_ENV, Retention};
pub use live::read_live;

use crate::api::{ApiError, Client, DeliveryFilter, LiveDelivery};
use crate::model::{Desired, Live, LiveEndpoint, LiveKey};
use crate::plan::{self, GuardError, Plan, PlanOptions};
use crate::sink::Sinks;

/// How many endpoints are read at once when listing keys or revealing secrets.
pub const READ_CONCURRENCY: usize = 8;

/// The calls reading the live state needs: reads only.
pub trait ReadApi {
    /// Every endpoint of the organization, newest first, each id once.
    fn list_endpoints(&self) -> impl Future<Output = Result<Vec<LiveEndpoint>, ApiError>>;
    /// Every encryption key of an endpoint, newest first.
    fn list_keys(&self, endpoint_id: &str) -> impl Future<Output = Result<Vec<LiveKey>, ApiError>>;
    /// The endpoint's current signing secret.
    fn reveal_secret(
        &self,
        endpoint_id: &str,
    ) -> impl Future<Output = Result<SecretString, ApiError>>;
    /// The deliveries `filter` selects that were created at or after `since`, newest first
    /// (the listing stops at the first page that reaches back before it).
    fn list_deliveries_since(
        &self,
        filter: &DeliveryFilter,
        since: jiff::Timestamp,
    ) -> impl Future<Output = Result<Vec<LiveDelivery>, ApiError>>;
}

impl ReadApi for Client {
    async fn list_endpoints(&self) -> Result<Vec<LiveEndpoint>, ApiError> {
        Client::list_endpoints(self).await
    }

    async fn list_keys(&self, endpoint_id: &str) -> Result<Vec<LiveKey>, ApiError> {
        Client::list_keys(self, endpoint_id).await
    }

    async fn reveal_secret(&self, endpoint_id: &str) -> Result<SecretString, ApiError> {
        Client::reveal_secret(self, endpoint_id).await
    }

    async fn list_deliveries_since(
        &self,
        filter: &DeliveryFilter,
        since: jiff::Timestamp,
    ) -> Result<Vec<LiveDelivery>, ApiError> {
        Client::list_deliveries_since(self, filter, since).await
    }
}

/// Why the live state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The API refused or failed.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// What reading the live state costs beyond the listing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// How many requests to send at once.
    pub concurrency: usize,
    /// Reveal every managed endpoint's secret and compare it with its readable sink (one
    /// request per endpoint).
    pub verify_secrets: bool,
    /// Look for replaced generated keys kept in sinks, and say which may go under this
    /// retention; `None` for reads that plan nothing.
    pub kept_keys: Option<Retention>,
}

/// A plan, the live state it was made against, and whether the deletion guard lets it be
/// applied.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub live: Live,
    /// `Err` when the guard refuses the plan (never with `force`).
    /// `plan` shows it as a warning; `apply` and `watch` stop.
    pub guard: Result<(), GuardError>,
}

/// Reads the live state for `desired` and plans against it; replaced keys kept in sinks may go
/// once `kept` has passed.
pub async fn plan_live(
    api: &impl ReadApi,
    desired: &Desired,
    sinks: &Sinks,
    options: &PlanOptions,
    force: bool,
    kept: Retention,
) -> Result<Planned, ReadError> {
    let read = ReadOptions {
        concurrency: READ_CONCURRENCY,
        verify_secrets: options.verify_secrets,
        kept_keys: Some(kept),
    };
    let live = read_live(api, desired, sinks, read).await?;
    let plan = plan::plan(desired, &live, options);
    let guard = plan::check_guard(&plan, desired, &live, force);
    Ok(Planned { plan, live, guard })
}
