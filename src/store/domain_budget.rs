//! `traps.max_hosts_per_domain`: how many host names of one registrable domain the crawl
//! admits. A server behind a wildcard DNS name answers for `a1.example.com`,
//! `a2.example.com`, … and each name is a host of its own, with its own politeness slot,
//! robots.txt and page budget: without a bound, one server is crawled without end, by
//! every fetch worker at once.
//!
//! Hosts are counted where their page budgets are (`host_budget`), in the transaction
//! that adds their first URLs, so the count holds across a resumed crawl and across the
//! nodes sharing one PostgreSQL database. A host whose budget had URLs counted before is
//! known, and its URLs cost nothing here; only a host new to `host_budget` is looked up
//! in `known_hosts`, and only one new there too is counted in `domain_budget`.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use sqlx::database::HasStatementCache;
use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, QueryBuilder, Type};

use super::backend::Backend;
use super::db::{execute_on_list, select_on_list, Conn};
use super::MAX_BINDS;
use crate::error::{DbContext, Error};
use crate::traps::domain_of;
use crate::urlnorm;

/// The `crawl_state` key of the running `traps.max_hosts_per_domain`, which every path
/// that adds URLs (the writer's batches and merges, a start's passes over the frontier)
/// reads when, and only when, a new host comes: set as a run starts.
pub(super) const LIMIT: &str = "max_hosts_per_domain";

/// The statements on `known_hosts` and `domain_budget`, in a transaction on `DB`.
pub(super) struct DomainBudget<DB>(PhantomData<DB>);

impl<DB: Backend + HasStatementCache> DomainBudget<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    i64: Type<DB> + for<'q> Encode<'q, DB> + for<'r> Decode<'r, DB>,
    String: Type<DB> + for<'r> Decode<'r, DB>,
    for<'s> &'s str: Type<DB> + Encode<'s, DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// The hosts of `candidates` (sorted) that are new to `known_hosts`, now in it, to be
    /// counted: nodes adding the same hosts wait for each other. Others were admitted
    /// before, and so was a name on another port: `example.com:8080` is no new name when
    /// `example.com` is known, which `scope.hosts` names on every port.
    pub(super) async fn admit(
        tx: &mut Conn<DB>,
        candidates: &[&str],
    ) -> Result<Vec<String>, Error> {
        let mut admitted = Vec::new();
        for chunk in candidates.chunks(MAX_BINDS) {
            let mut q = QueryBuilder::<DB>::new("INSERT INTO known_hosts (host) ");
            q.push_values(chunk, |mut b, host| {
                b.push_bind(*host);
            });
            q.push(" ON CONFLICT (host) DO NOTHING RETURNING host");
            admitted.extend(
                q.build_query_scalar::<String>()
                    .persistent(false)
                    .fetch_all(&mut *tx)
                    .await
                    .doing("admitting new hosts")?,
            );
        }
        // After the insert: a name new in this batch beside it on another port counts once.
        let admitted_hosts: Vec<&str> = admitted.iter().map(String::as_str).collect();
        let named = Self::names_known(tx, &admitted_hosts).await?;
        admitted.retain(|host| !named.contains(urlnorm::host_name(host)));
        Ok(admitted)
    }

    /// The names (ports left out) of those of `hosts` with a port that are known. Most
    /// crawls meet no port: nothing is asked then. Only hosts new to `known_hosts` are
    /// looked at, on the writer's path once per new host.
    async fn names_known(tx: &mut Conn<DB>, hosts: &[&str]) -> Result<BTreeSet<String>, Error> {
        let names: BTreeSet<&str> = hosts
            .iter()
            .filter_map(|&host| Some(urlnorm::host_name(host)).filter(|name| *name != host))
            .collect();
        let names: Vec<&str> = names.into_iter().collect();
        let known: Vec<String> = select_on_list(
            tx,
            "SELECT host FROM known_hosts WHERE host IN ",
            &names,
            "looking up the names of new hosts",
        )
        .await?;
        Ok(known.into_iter().collect())
    }

    /// Counts each domain's new hosts in `domain_budget`, in domain order; returns each
    /// domain's count now.
    pub(super) async fn count(
        tx: &mut Conn<DB>,
        domains: &BTreeMap<&str, Vec<&str>>,
    ) -> Result<BTreeMap<String, i64>, Error> {
        let rows: Vec<(&str, i64)> = domains
            .iter()
            .map(|(domain, hosts)| (*domain, i64::try_from(hosts.len()).unwrap_or(i64::MAX)))
            .collect();
        let mut totals = BTreeMap::new();
        for chunk in rows.chunks(MAX_BINDS / 2) {
            let mut q = QueryBuilder::<DB>::new("INSERT INTO domain_budget (domain, hosts) ");
            q.push_values(chunk, |mut b, (domain, n)| {
                b.push_bind(*domain).push_bind(*n);
            });
            q.push(
                " ON CONFLICT (domain) DO UPDATE SET hosts = domain_budget.hosts + excluded.hosts
                 RETURNING domain, hosts",
            );
            totals.extend(
                q.build_query_as::<(String, i64)>()
                    .persistent(false)
                    .fetch_all(&mut *tx)
                    .await
                    .doing("counting new hosts against their domains")?,
            );
        }
        Ok(totals)
    }

    /// The running `traps.max_hosts_per_domain` (0: no limit).
    pub(super) async fn limit(tx: &mut Conn<DB>) -> Result<i64, Error> {
        let limit: Option<i64> = sqlx::query_scalar("SELECT value FROM crawl_state WHERE key = $1")
            .bind(LIMIT)
            .fetch_optional(&mut *tx)
            .await
            .doing("reading traps.max_hosts_per_domain")?;
        Ok(limit.unwrap_or(0))
    }

    /// Takes `hosts`, of `domain`, out again: they are not crawled after all, and a later
    /// run with a higher limit may admit them.
    pub(super) async fn refuse(
        tx: &mut Conn<DB>,
        domain: &str,
        hosts: &[&str],
    ) -> Result<(), Error> {
        let doing = "refusing hosts over their domain's limit";
        sqlx::query("UPDATE domain_budget SET hosts = hosts - $1 WHERE domain = $2")
            .bind(i64::try_from(hosts.len()).unwrap_or(i64::MAX))
            .bind(domain)
            .execute(&mut *tx)
            .await
            .doing(doing)?;
        execute_on_list(tx, "DELETE FROM known_hosts WHERE host IN ", hosts, doing).await
    }
}

/// New hosts by their domains, each domain's in host order.
pub(super) fn by_domain(hosts: &[String]) -> BTreeMap<&str, Vec<&str>> {
    let mut domains: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for host in hosts {
        domains.entry(domain_of(host)).or_default().push(host);
    }
    for hosts in domains.values_mut() {
        hosts.sort_unstable();
    }
    domains
}

/// The reason a URL of `host`, past `domain`'s `limit`, is a trap row: [`CUT`] matches it.
pub(super) fn reason(host: &str, domain: &str, limit: i64) -> String {
    format!(
        "its domain {domain} has traps.max_hosts_per_domain = {limit} host names crawled \
         already, and its host {host} would be one more"
    )
}

/// The [`reason`]s of trap rows cut at their domain's limit, as a `LIKE` pattern: a run
/// with the limit raised queues them again.
pub(super) const CUT: &str = "its domain % has traps.max_hosts_per_domain = %";

/// `traps.max_hosts_per_domain` and `traps.max_pages_per_host` (each 0: no limit), as a
/// requeue of cut host names holds them.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    /// `None` for the names the user has named, admitted uncounted.
    pub hosts: Option<i64>,
    pub pages: i64,
}

impl Limits {
    /// Whether a domain of `hosts` host names is within the limit.
    pub(super) fn admits(self, hosts: i64) -> bool {
        self.hosts.is_none_or(|limit| limit == 0 || hosts <= limit)
    }

    /// The URLs a host that has `spent` of its budget may queue yet.
    pub(super) fn pages_left(self, spent: i64) -> i64 {
        if self.pages == 0 {
            i64::MAX
        } else {
            self.pages - spent
        }
    }
}
