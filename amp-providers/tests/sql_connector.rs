//! The SQL data-source connector against real databases: a SQLite file made by the test,
//! and the PostgreSQL that `scripts/test.sh` starts (`AMP_TEST_POSTGRES_URL`).

use amp_core::data_source::{ConnectorKind, DataSourceSpec};
use amp_core::{Connector, DataSourceId, ErrorKind, Secret};
use amp_providers::connector::SqlConnector;

const LIVE: &str = "SELECT id, title, body AS text, link AS url, allowed, updated AS updated_at \
                    FROM policies WHERE body LIKE '%' || $1 || '%' ORDER BY id LIMIT $2";

fn spec(url: &str, query: &str, sync_query: Option<&str>) -> DataSourceSpec {
    DataSourceSpec {
        id: DataSourceId::new(),
        kind: ConnectorKind::Sql,
        description: String::new(),
        url: Secret::new(url),
        query: query.into(),
        sync_query: sync_query.map(str::to_owned),
    }
}

/// A SQLite database with three policies, in a directory that lives as long as the value.
async fn sqlite_source() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hr.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    for statement in [
        "CREATE TABLE policies (id TEXT, title TEXT, body TEXT, link TEXT, allowed TEXT, updated INTEGER)",
        "INSERT INTO policies VALUES ('p1', 'Leave', 'Parental leave is 16 weeks.', 'https://hr/p1', '*', 100)",
        "INSERT INTO policies VALUES ('p2', 'Pay', 'Pay reviews happen in March.', NULL, 'ada@example.com, bob@example.com', 200)",
        "INSERT INTO policies VALUES ('p3', 'Exec', 'Executive leave is unlimited.', NULL, 'ceo@example.com', 300)",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
    (dir, format!("sqlite://{}", path.display()))
}

#[tokio::test]
async fn a_live_query_binds_the_question_and_limit_and_reads_every_column() {
    let (_dir, url) = sqlite_source().await;
    let connector = SqlConnector::new("hr", &spec(&url, LIVE, None)).unwrap();
    assert_eq!(connector.kind(), "sql");
    let records = connector.query("leave", 10).await.unwrap();
    assert_eq!(records.iter().map(|r| r.external_id.as_str()).collect::<Vec<_>>(), ["p1", "p3"]);
    assert_eq!(records[0].title, "Leave");
    assert_eq!(records[0].text, "Parental leave is 16 weeks.");
    assert_eq!(records[0].url.as_deref(), Some("https://hr/p1"));
    assert_eq!(records[0].allowed_principals, ["*"]);
    assert_eq!(records[0].updated_at.timestamp(), 100);
    assert_eq!(connector.query("leave", 1).await.unwrap().len(), 1, "the limit is bound as $2");
    let pay = connector.query("Pay", 10).await.unwrap();
    assert_eq!(pay[0].allowed_principals, ["ada@example.com", "bob@example.com"]);
    assert_eq!(pay[0].url, None);
    // The question is bound, never spliced into the SQL.
    assert!(connector.query("' OR 1=1 --", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn sync_pages_through_changes_with_an_integer_cursor() {
    let (_dir, url) = sqlite_source().await;
    let sync = "SELECT id, title, body AS text, link AS url, allowed, updated AS updated_at \
                FROM policies WHERE updated > $1 ORDER BY updated LIMIT $2";
    let connector = SqlConnector::new("hr", &spec(&url, LIVE, Some(sync))).unwrap();
    let batch = connector.sync(None).await.unwrap();
    assert_eq!(batch.records.len(), 3);
    assert_eq!(batch.next_cursor, None, "a short page is the last");
    let since = connector.sync(Some("150")).await.unwrap();
    assert_eq!(since.records.iter().map(|r| r.external_id.as_str()).collect::<Vec<_>>(), ["p2", "p3"]);
    assert_eq!(connector.sync(Some("yesterday")).await.unwrap_err().kind(), ErrorKind::InvalidInput);

    let live_only = SqlConnector::new("hr", &spec(&url, LIVE, None)).unwrap();
    assert_eq!(live_only.sync(None).await.unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn failures_say_which_source_and_keep_database_details_and_passwords_out() {
    let (_dir, url) = sqlite_source().await;
    let broken = SqlConnector::new("hr", &spec(&url, "SELECT secret_column FROM nowhere", None)).unwrap();
    let err = broken.query("x", 5).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Upstream);
    assert!(err.public_message().contains("`hr`") && !err.public_message().contains("nowhere"), "{err}");

    let wrong_columns =
        SqlConnector::new("hr", &spec(&url, "SELECT id FROM policies LIMIT $2 OFFSET length($1)", None))
            .unwrap();
    assert_eq!(wrong_columns.query("x", 5).await.unwrap_err().kind(), ErrorKind::Upstream);

    // Nothing listens on port 9 of loopback.
    let down = SqlConnector::new("crm", &spec("postgres://amp:hunter2@127.0.0.1:9/crm", LIVE, None)).unwrap();
    let err = down.query("x", 5).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.public_message().contains("hunter2") && !format!("{down:?}").contains("hunter2"));

    let err = SqlConnector::new("x", &spec("mysql://db/x", LIVE, None)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.public_message().contains("data_sources.x.url"), "{err}");
}

#[tokio::test]
async fn postgres_sources_answer_live_queries() {
    let url = std::env::var("AMP_TEST_POSTGRES_URL").expect(
        "AMP_TEST_POSTGRES_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL",
    );
    let table = format!("policies_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let create =
        format!("CREATE TABLE {table} (id BIGINT, title TEXT, body TEXT, allowed TEXT, updated TIMESTAMPTZ)");
    sqlx::query(sqlx::AssertSqlSafe(create)).execute(&pool).await.unwrap();
    let insert = format!(
        "INSERT INTO {table} VALUES (1, 'Leave', 'Parental leave is 16 weeks.', '*', '2026-01-01T00:00:00Z'), \
         (2, 'Travel', 'Travel is booked by the office.', '*', '2026-02-01T00:00:00Z')"
    );
    sqlx::query(sqlx::AssertSqlSafe(insert)).execute(&pool).await.unwrap();

    // The operator casts their schema to the fixed columns.
    let live = format!(
        "SELECT id::text AS id, title, body AS text, NULL::text AS url, allowed, \
         EXTRACT(EPOCH FROM updated)::bigint AS updated_at FROM {table} \
         WHERE to_tsvector('english', body) @@ plainto_tsquery('english', $1) LIMIT $2"
    );
    let connector = SqlConnector::new("hr", &spec(&url, &live, None)).unwrap();
    let records = connector.query("parental leave", 5).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!((records[0].external_id.as_str(), records[0].title.as_str()), ("1", "Leave"));
    assert_eq!(records[0].updated_at.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}"))).execute(&pool).await.unwrap();
}
