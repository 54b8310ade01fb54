//! A user service over PostgreSQL, cached with stratacache: the project's main
//! demonstration.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run -p stratacache-example-service --bin user-service
//! curl localhost:3000/users/7
//! curl 'localhost:3000/users?ids=1,2,3'
//! curl -X PUT localhost:3000/users/7 -H 'content-type: application/json' \
//!      -d '{"id":7,"name":"Ada","email":"ada@example.com"}'
//! curl localhost:3000/metrics
//! ```
//!
//! Environment: `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! `BIND_ADDR` (default `127.0.0.1:3000`), `STRATACACHE_REDIS_URL` (optional: run
//! several processes sharing Redis), `CACHE=off` (serve every read from the database,
//! for comparisons). On start it creates table `users(id bigint primary key, name
//! text, email text)` if missing, seeds ids 1..=10000 if it is empty, and installs a
//! trigger that notifies `{"tags": ["user:<id>"]}` on channel `stratacache` for every
//! written row, which the service's `PgInvalidation` listener turns into
//! invalidations: an `UPDATE` made with psql is seen at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use stratacache::{cached, invalidate_tag};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: i64,
    name: String,
    email: String,
}

/// The database: a client, and how many queries it has run (exported in /metrics).
struct Db {
    client: tokio_postgres::Client,
    queries: AtomicU64,
}

#[derive(Clone)]
struct App {
    db: Arc<Db>,
    cache: bool,
}

/// A database failure, as the HTTP layer reports it.
#[derive(Debug)]
struct DbError(String);

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        DbError(error.to_string())
    }
}

async fn load_user(db: &Db, id: i64) -> Result<Option<User>, DbError> {
    db.queries.fetch_add(1, Ordering::Relaxed);
    let row = db
        .client
        .query_opt("SELECT id, name, email FROM users WHERE id = $1", &[&id])
        .await?;
    Ok(row.map(|row| User {
        id: row.get(0),
        name: row.get(1),
        email: row.get(2),
    }))
}

/// `Ok(None)` (no such user) is cached too: a miss for a missing row costs one query.
/// `users` tags every entry, so the database listener can drop them all at once
/// after it reconnects.
#[cached(ttl = "5m", tags = ["users", "user:{id}"], skip(db), name = "users.get")]
async fn cached_user(db: &Db, id: i64) -> Result<Option<User>, DbError> {
    load_user(db, id).await
}

impl App {
    async fn user(&self, id: i64) -> Result<Option<User>, DbError> {
        if self.cache {
            cached_user(&self.db, id).await
        } else {
            load_user(&self.db, id).await
        }
    }
}

type Reply<T> = Result<T, (StatusCode, String)>;

fn internal(error: DbError) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, error.0)
}

async fn get_user(State(app): State<App>, Path(id): Path<i64>) -> Reply<Json<User>> {
    match app.user(id).await.map_err(internal)? {
        Some(user) => Ok(Json(user)),
        None => Err((StatusCode::NOT_FOUND, format!("no user {id}"))),
    }
}

#[derive(Deserialize)]
struct Ids {
    ids: String,
}

async fn get_users(
    State(app): State<App>,
    Query(Ids { ids }): Query<Ids>,
) -> Reply<Json<Vec<User>>> {
    let ids: Vec<i64> = ids
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| (StatusCode::BAD_REQUEST, format!("bad id {s:?}")))
        })
        .collect::<Result<_, _>>()?;
    let found = futures_util::future::join_all(ids.iter().map(|&id| app.user(id))).await;
    let mut users = Vec::with_capacity(ids.len());
    for user in found {
        users.extend(user.map_err(internal)?);
    }
    Ok(Json(users))
}

async fn put_user(
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(user): Json<User>,
) -> Reply<Json<User>> {
    if user.id != id {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("body id {} is not {id}", user.id),
        ));
    }
    app.db.queries.fetch_add(1, Ordering::Relaxed);
    app.db
        .client
        .execute(
            "INSERT INTO users (id, name, email) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email",
            &[&user.id, &user.name, &user.email],
        )
        .await
        .map_err(|e| internal(e.into()))?;
    // After the write: every process drops user:{id}, here and in Redis (or from the
    // outbox, if Redis cannot take it now or this request is cancelled meanwhile).
    invalidate_tag!("user:{}", id)
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(user))
}

async fn metrics(State(app): State<App>) -> String {
    let queries = app.db.queries.load(Ordering::Relaxed);
    format!(
        "{}# HELP app_db_queries_total Queries sent to PostgreSQL.\n# TYPE app_db_queries_total counter\napp_db_queries_total {queries}\n",
        stratacache::prometheus()
    )
}

async fn prepare(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    // `CREATE TABLE IF NOT EXISTS` is not safe against itself: two processes starting
    // together can both pass the check and one fails. A transaction-level advisory lock
    // makes them take turns.
    client
        .batch_execute(
            "BEGIN; SELECT pg_advisory_xact_lock(4242); \
             CREATE TABLE IF NOT EXISTS users (id bigint PRIMARY KEY, name text, email text); \
             CREATE OR REPLACE FUNCTION users_notify_stratacache() RETURNS trigger AS $$ \
             BEGIN \
               PERFORM pg_notify('stratacache', json_build_object('tags', \
                 json_build_array('user:' || COALESCE(NEW.id, OLD.id)))::text); \
               RETURN NULL; \
             END $$ LANGUAGE plpgsql; \
             DROP TRIGGER IF EXISTS users_notify_stratacache ON users; \
             CREATE TRIGGER users_notify_stratacache AFTER INSERT OR UPDATE OR DELETE ON users \
               FOR EACH ROW EXECUTE FUNCTION users_notify_stratacache(); \
             COMMIT;",
        )
        .await?;
    // Seeding races between processes starting together are settled by ON CONFLICT.
    let empty: bool = client
        .query_one("SELECT NOT EXISTS (SELECT 1 FROM users)", &[])
        .await?
        .get(0);
    if empty {
        client
            .batch_execute(
                "INSERT INTO users (id, name, email) \
                 SELECT n, 'user ' || n, 'user' || n || '@example.com' FROM generate_series(1, 10000) AS n \
                 ON CONFLICT (id) DO NOTHING",
            )
            .await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let bind = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let cache = std::env::var("CACHE").map_or(true, |v| v != "off");

    let (client, connection) =
        tokio_postgres::connect(&database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("PostgreSQL connection closed: {error}");
        }
    });
    prepare(&client).await?;
    stratacache::init(stratacache::Config::from_env())?;
    // Writes made outside this service (psql, a migration) reach the cache too: the
    // trigger installed by `prepare` notifies `user:{id}` on channel `stratacache`.
    stratacache::postgres::PgInvalidation::new(&database_url)
        .channel("stratacache")
        .on_reconnect_invalidate(["users"])
        .spawn();

    let app = App {
        db: Arc::new(Db {
            client,
            queries: AtomicU64::new(0),
        }),
        cache,
    };
    let router = Router::new()
        .route("/users", get(get_users))
        .route("/users/{id}", get(get_user).put(put_user))
        .route("/metrics", get(metrics))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Batch write-backs and queued invalidations live in this process: hand them to
    // Redis before it exits (bounded: Redis may be away).
    stratacache::flush_writes().await;
    let flushed = std::time::Duration::from_secs(5);
    if tokio::time::timeout(flushed, stratacache::flush_invalidations())
        .await
        .is_err()
    {
        let lost = stratacache::stats().outbox.pending;
        eprintln!("{lost} invalidations never reached Redis");
    }
    Ok(())
}
