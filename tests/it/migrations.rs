//! Schema changes that convert existing data, run on a database that has
//! rows in the old shape.
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Statement, Value};
use theatre::{
    entity::booking::{self, SeatList},
    ids::SeatId,
};

use crate::common::*;

/// Migrations up to and including m20261201_000004 (the last with bookings'
/// seats as a comma-joined string).
const BEFORE_SEAT_LISTS: u32 = 4;

async fn database(
    backend: Backend,
) -> (DatabaseConnection, Option<DroppedAtEnd>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (url, dropped) = match backend {
        Backend::Sqlite => (
            format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display()),
            None,
        ),
        Backend::Postgres => {
            let url = empty_pg_database().await;
            (url.clone(), Some(DroppedAtEnd(url)))
        }
    };
    (sea_orm::Database::connect(url).await.unwrap(), dropped, dir)
}

/// `$n` parameters work on both backends (SQLite numbers `$1`, `$2` in the
/// order they first appear).
async fn insert(db: &DatabaseConnection, sql: &str, values: Vec<Value>) {
    let backend = db.get_database_backend();
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
}

async fn existing_bookings_keep_their_seats_as_a_list(backend: Backend) {
    let (db, _dropped, _dir) = database(backend).await;
    Migrator::up(&db, Some(BEFORE_SEAT_LISTS)).await.unwrap();
    let (user, id) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let now = chrono::Utc::now();
    insert(
        &db,
        "INSERT INTO users (id, email, display_name, password_hash, role, created_at, updated_at) \
         VALUES ($1, 'old@theatre.test', 'Old', 'x', 'USER', $2, $2)",
        vec![user.into(), now.into()],
    )
    .await;
    insert(
        &db,
        "INSERT INTO bookings (id, user_id, show_id, status, seat_ids, total_cents, movie_title, \
         theatre_name, starts_at, created_at) \
         VALUES ($1, $2, NULL, 'CONFIRMED', 'B7,B8,AB10', 3000, 'Old', 'Odeon', $3, $3)",
        vec![id.into(), user.into(), now.into()],
    )
    .await;

    Migrator::up(&db, None).await.unwrap();
    let stored = booking::Entity::find_by_id(theatre::ids::BookingId(id))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.seat_ids,
        SeatList(
            ["B7", "B8", "AB10"]
                .map(|s| SeatId::parse("seat", s).unwrap())
                .to_vec()
        )
    );

    // Down to just before the seat lists, undoing every later migration too.
    let later = Migrator::migrations().len() as u32 - BEFORE_SEAT_LISTS;
    Migrator::down(&db, Some(later)).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT seat_ids FROM bookings",
        ))
        .await
        .unwrap()
        .unwrap();
    let text: String = row.try_get("", "seat_ids").unwrap();
    assert_eq!(text, "B7,B8,AB10", "down restores the old shape");
}

on_both_backends!(existing_bookings_keep_their_seats_as_a_list);
