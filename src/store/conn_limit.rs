//! Fitting a node's PostgreSQL pool to the connections the server lets it open: a role's
//! or a database's `CONNECTION LIMIT`, or the server's `max_connections`, less what other
//! sessions hold. sqlx's pool takes the server's refusal of one connection too many
//! (SQLSTATE 53300) for a server starting up and asks again for its whole acquire
//! timeout, rather than wait for a connection it holds to be handed back: under a limit
//! of 3, a crawl of one URL took a minute, warning each time that the database was out of
//! reach.

use sqlx::{PgConnection, Row};

/// The connections a node's pool holds when the server allows them.
pub(super) const POOL_SIZE: u32 = 8;

/// The connections a node cannot do with fewer of: re-admitting stored links holds a
/// cursor over them on one while it adds what it admits on another.
pub(super) const FEWEST: u32 = 2;

/// Each limit that applies to this session with the client sessions open under it (this
/// one among them). A role's and a database's limits do not bind a superuser, who may
/// also take the server's reserved connections; `reserved_connections` (PostgreSQL 16)
/// is reserved for the members of `pg_use_reserved_connections`, which few crawl roles
/// are, so it counts against every other role.
const LIMITS: &str = "
    SELECT r.rolname::text AS role, d.datname::text AS database,
           CASE WHEN r.rolsuper THEN -1 ELSE r.rolconnlimit END AS role_limit,
           (SELECT count(*) FROM pg_stat_activity a
            WHERE a.usesysid = r.oid AND a.backend_type = 'client backend') AS role_open,
           CASE WHEN r.rolsuper THEN -1 ELSE d.datconnlimit END AS database_limit,
           (SELECT count(*) FROM pg_stat_activity a
            WHERE a.datid = d.oid AND a.backend_type = 'client backend') AS database_open,
           current_setting('max_connections')::int - CASE WHEN r.rolsuper THEN 0 ELSE
               current_setting('superuser_reserved_connections')::int
               + coalesce(current_setting('reserved_connections', true)::int, 0) END
               AS server_limit,
           (SELECT count(*) FROM pg_stat_activity a
            WHERE a.backend_type = 'client backend') AS server_open
    FROM pg_roles r, pg_database d
    WHERE r.rolname = session_user AND d.datname = current_database()";

/// A limit on the connections of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Limit {
    /// The login role's `CONNECTION LIMIT`.
    Role(String),
    /// The database's `CONNECTION LIMIT`.
    Database(String),
    /// The server's `max_connections`, less the connections it reserves.
    Server,
}

/// What lets a node open fewer connections than [`POOL_SIZE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fewer {
    /// The connections the node may open.
    pub(super) room: u32,
    limit: Limit,
    /// The connections `limit` allows in all.
    allows: i32,
    /// The sessions open under it besides the node's.
    others: i64,
}

impl std::fmt::Display for Fewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allows = self.allows;
        match &self.limit {
            Limit::Role(role) => write!(f, "role {role:?} has CONNECTION LIMIT {allows}"),
            Limit::Database(db) => write!(f, "database {db:?} has CONNECTION LIMIT {allows}"),
            Limit::Server => write!(
                f,
                "the server takes {allows} connections (max_connections, less those reserved)"
            ),
        }?;
        if self.others > 0 {
            write!(f, ", {} of them open by other sessions", self.others)?;
        }
        Ok(())
    }
}

/// The limit that leaves the fewest connections to this node, on `connection` (which the
/// caller closes before its pool opens, so it counts as room), when it leaves fewer than
/// [`POOL_SIZE`].
pub(super) async fn fewer(connection: &mut PgConnection) -> Result<Option<Fewer>, sqlx::Error> {
    let row = sqlx::query(LIMITS).fetch_one(connection).await?;
    let limits = [
        (Limit::Role(row.try_get("role")?), "role"),
        (Limit::Database(row.try_get("database")?), "database"),
        (Limit::Server, "server"),
    ];
    let mut fewest: Option<Fewer> = None;
    for (limit, column) in limits {
        let allows: i32 = row.try_get(format!("{column}_limit").as_str())?;
        let open: i64 = row.try_get(format!("{column}_open").as_str())?;
        if allows < 0 {
            continue;
        }
        let others = (open - 1).max(0);
        let room = (i64::from(allows) - others).clamp(0, i64::from(POOL_SIZE));
        let room = u32::try_from(room).unwrap_or(0);
        if fewest.as_ref().is_none_or(|f| room < f.room) {
            fewest = Some(Fewer {
                room,
                limit,
                allows,
                others,
            });
        }
    }
    Ok(fewest.filter(|fewer| fewer.room < POOL_SIZE))
}
