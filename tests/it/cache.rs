//! The Redis read-through cache against the real Redis: reads served without
//! the database, every write path visible to the next read, TTLs,
//! single-flight on a cold key, and Redis failures answered from the database.

use std::time::Duration;

use crate::common::*;
use theatre::proto;
use theatre::server::RunningServer;
use tonic::Code;

on_both_backends!(
    second_read_is_served_without_the_database,
    every_write_path_is_visible_to_the_next_read,
    a_write_on_one_instance_is_read_at_once_on_another,
);

async fn cached_app(backend: Backend) -> TestApp {
    let url = redis_url();
    TestApp::spawn_with(backend, |c| use_redis(c, &url)).await
}

/// Runs `read` twice; the second must cost no SQL statement and be a cache hit.
macro_rules! assert_cached {
    ($app:expr, $read:expr) => {{
        let first = $read.await.expect("first read").into_inner();
        let statements = $app.server.db().statements();
        let hits = $app.server.cache_stats().hits;
        let second = $read.await.expect("second read").into_inner();
        assert_eq!(second, first, "the cached answer equals the loaded one");
        assert_eq!(
            $app.server.db().statements(),
            statements,
            "no SQL for a cached read"
        );
        assert_eq!($app.server.cache_stats().hits, hits + 1);
        second
    }};
}

async fn second_read_is_served_without_the_database(backend: Backend) {
    let app = cached_app(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;
    let c = &mut ann.catalog;
    assert_cached!(
        app,
        c.get_movie(proto::GetMovieRequest {
            movie_id: fx.movie_id.clone()
        })
    );
    assert_cached!(app, c.list_movies(proto::ListMoviesRequest::default()));
    assert_cached!(
        app,
        c.list_movies(proto::ListMoviesRequest {
            page_size: 1,
            page_token: String::new()
        })
    );
    assert_cached!(
        app,
        c.get_show(proto::GetShowRequest {
            show_id: fx.show_id.clone()
        })
    );
    assert_cached!(
        app,
        c.list_shows(proto::ListShowsRequest {
            movie_id: fx.movie_id.clone(),
            ..Default::default()
        })
    );
    assert_cached!(app, c.list_shows(proto::ListShowsRequest::default()));
    assert_cached!(
        app,
        c.get_seat_map(proto::GetSeatMapRequest {
            show_id: fx.show_id.clone()
        })
    );

    // Errors are not cached: an unknown movie asks the database every time.
    let missing = uuid::Uuid::now_v7().to_string();
    for _ in 0..2 {
        let before = app.server.db().statements();
        let r = c
            .get_movie(proto::GetMovieRequest {
                movie_id: missing.clone(),
            })
            .await;
        assert_status(r, Code::NotFound, "movie");
        assert!(app.server.db().statements() > before);
    }
}

async fn every_write_path_is_visible_to_the_next_read(backend: Backend) {
    let app = cached_app(backend).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let mut ann = app.user("ann").await;

    macro_rules! read {
        ($call:ident, $req:expr) => {
            ann.catalog.$call($req).await.map(|r| r.into_inner())
        };
    }
    let movie = || proto::GetMovieRequest {
        movie_id: fx.movie_id.clone(),
    };
    let show = || proto::GetShowRequest {
        show_id: fx.show_id.clone(),
    };
    let seats = || proto::GetSeatMapRequest {
        show_id: fx.show_id.clone(),
    };
    let shows_of = || proto::ListShowsRequest {
        movie_id: fx.movie_id.clone(),
        ..Default::default()
    };
    let all_shows = proto::ListShowsRequest::default;
    let movies = proto::ListMoviesRequest::default;
    // Warm every entry (twice, so each is known to be cached).
    for _ in 0..2 {
        read!(get_movie, movie()).unwrap();
        read!(get_show, show()).unwrap();
        read!(get_seat_map, seats()).unwrap();
        read!(list_shows, shows_of()).unwrap();
        read!(list_shows, all_shows()).unwrap();
        read!(list_movies, movies()).unwrap();
    }
    assert!(app.server.cache_stats().hits >= 6);

    // CreateMovie → ListMovies.
    let second = app.create_movie(&mut admin, "Second").await;
    let listed = read!(list_movies, movies()).unwrap().movies;
    assert_eq!(listed.len(), 2);

    // UpdateMovie → GetMovie, and the title shown by GetShow and ListShows.
    app.rename_movie(&mut admin, &fx.movie_id, "Metropolis (restored)")
        .await;
    assert_eq!(
        read!(get_movie, movie()).unwrap().movie.unwrap().title,
        "Metropolis (restored)"
    );
    assert_eq!(
        read!(get_show, show()).unwrap().show.unwrap().movie_title,
        "Metropolis (restored)"
    );
    assert_eq!(
        read!(list_shows, shows_of()).unwrap().shows[0].movie_title,
        "Metropolis (restored)"
    );

    // CreateBooking → seat map, GetShow and ListShows availability.
    let booking = book(&mut ann, &fx.show_id, &["A1", "A2"]).await.unwrap();
    let map = read!(get_seat_map, seats()).unwrap().seats;
    assert_eq!(map[0].status, proto::SeatStatus::Booked as i32);
    assert_eq!(
        read!(get_show, show())
            .unwrap()
            .show
            .unwrap()
            .available_seats,
        18
    );
    assert_eq!(
        read!(list_shows, all_shows()).unwrap().shows[0].available_seats,
        18
    );

    // CancelBooking → seats free again everywhere.
    ann.booking
        .cancel_booking(proto::CancelBookingRequest {
            booking_id: booking.id,
        })
        .await
        .unwrap();
    let map = read!(get_seat_map, seats()).unwrap().seats;
    assert!(
        map.iter()
            .all(|s| s.status == proto::SeatStatus::Available as i32)
    );
    assert_eq!(
        read!(get_show, show())
            .unwrap()
            .show
            .unwrap()
            .available_seats,
        20
    );
    assert_eq!(
        read!(list_shows, all_shows()).unwrap().shows[0].available_seats,
        20
    );

    // CreateShow → ListShows.
    let extra = app
        .another_show(&mut admin, &fx, vec![row("C", 2, 100)])
        .await;
    assert_eq!(read!(list_shows, shows_of()).unwrap().shows.len(), 2);

    // DeleteShow → GetShow, seat map and listings.
    let extra_show = || proto::GetShowRequest {
        show_id: extra.id.clone(),
    };
    read!(get_show, extra_show()).unwrap();
    admin
        .catalog
        .delete_show(proto::DeleteShowRequest {
            show_id: extra.id.clone(),
        })
        .await
        .unwrap();
    assert_status(read!(get_show, extra_show()), Code::NotFound, "show");
    assert_status(
        read!(
            get_seat_map,
            proto::GetSeatMapRequest {
                show_id: extra.id.clone()
            }
        ),
        Code::NotFound,
        "show",
    );
    assert_eq!(read!(list_shows, shows_of()).unwrap().shows.len(), 1);

    // DeleteMovie → the movie, its shows and seat maps, and the listings (cascade).
    admin
        .catalog
        .delete_movie(proto::DeleteMovieRequest {
            movie_id: fx.movie_id.clone(),
        })
        .await
        .unwrap();
    assert_status(read!(get_movie, movie()), Code::NotFound, "movie");
    assert_status(read!(get_show, show()), Code::NotFound, "show");
    assert_status(read!(get_seat_map, seats()), Code::NotFound, "show");
    assert_status(read!(list_shows, shows_of()), Code::NotFound, "movie");
    assert!(read!(list_shows, all_shows()).unwrap().shows.is_empty());
    let left: Vec<String> = read!(list_movies, movies())
        .unwrap()
        .movies
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, [second.id]);
    assert_eq!(app.server.cache_stats().errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn entries_expire_with_their_ttl() {
    let url = redis_url();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        use_redis(c, &url);
        c.cache.seat_map_ttl = Duration::from_millis(300);
    })
    .await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let req = || proto::GetSeatMapRequest {
        show_id: fx.show_id.clone(),
    };
    admin.catalog.get_seat_map(req()).await.unwrap();
    let statements = app.server.db().statements();
    admin.catalog.get_seat_map(req()).await.unwrap();
    assert_eq!(
        app.server.db().statements(),
        statements,
        "cached within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    admin.catalog.get_seat_map(req()).await.unwrap();
    assert_eq!(
        app.server.db().statements(),
        statements + 1,
        "reloaded after the TTL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cold_key_under_load_queries_the_database_once() {
    const READERS: usize = 64;
    let app = cached_app(Backend::Postgres).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let reader = app.user("reader").await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(READERS));
    let before = app.server.db().statements();
    let stats_before = app.server.cache_stats();
    let reads = (0..READERS).map(|_| {
        let mut reader = reader.clone();
        let barrier = barrier.clone();
        let show_id = fx.show_id.clone();
        tokio::spawn(async move {
            barrier.wait().await;
            reader
                .catalog
                .get_seat_map(proto::GetSeatMapRequest { show_id })
                .await
                .map(|r| r.into_inner().seats.len())
        })
    });
    for read in futures::future::join_all(reads).await {
        assert_eq!(read.unwrap().unwrap(), 20);
    }
    // Loading a seat map is one SELECT.
    assert_eq!(
        app.server.db().statements() - before,
        1,
        "one database query for {READERS} readers"
    );
    let stats = app.server.cache_stats();
    assert_eq!(stats.errors, stats_before.errors);
    eprintln!(
        "single-flight: {READERS} readers → 1 query; {} waited on the flight, {} hit Redis",
        stats.coalesced - stats_before.coalesced,
        stats.hits - stats_before.hits
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_redis_means_database_only() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| use_redis(c, "redis://127.0.0.1:1")).await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    for _ in 0..3 {
        let map = admin
            .catalog
            .get_seat_map(proto::GetSeatMapRequest {
                show_id: fx.show_id.clone(),
            })
            .await
            .expect("answered from the database")
            .into_inner();
        assert_eq!(map.seats.len(), 20);
    }
    let stats = app.server.cache_stats();
    assert_eq!(stats.hits, 0);
    assert!(stats.errors >= 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_is_answered_from_the_database_and_recovers() {
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        use_redis(c, &url);
        c.cache.timeout = Duration::from_millis(50);
    })
    .await;
    let mut admin = app.admin().await;
    let fx = app.show_fixture(&mut admin).await;
    let get_title = |mut client: Client, movie_id: String| async move {
        client
            .catalog
            .get_movie(proto::GetMovieRequest { movie_id })
            .await
            .map(|r| r.into_inner().movie.unwrap().title)
    };
    get_title(admin.clone(), fx.movie_id.clone()).await.unwrap();
    assert_eq!(
        get_title(admin.clone(), fx.movie_id.clone()).await.unwrap(),
        "Metropolis"
    );
    assert_eq!(app.server.cache_stats().hits, 1);

    // Slow Redis: every command times out; reads are still answered. (The
    // title is this instance's copy by now: a read that needs Redis is a new one.)
    redis.cli(&["client", "pause", "600", "all"]);
    let errors = app.server.cache_stats().errors;
    admin
        .catalog
        .list_movies(proto::ListMoviesRequest::default())
        .await
        .expect("answered from the database");
    assert!(
        app.server.cache_stats().errors > errors,
        "a slow Redis counts as an error"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Redis stopped: reads and writes go on; a write's invalidation is missed.
    redis.stop();
    // Writes do not need Redis.
    app.rename_movie(&mut admin, &fx.movie_id, "Written while Redis was down")
        .await;
    assert_eq!(
        get_title(admin.clone(), fx.movie_id.clone()).await.unwrap(),
        "Written while Redis was down"
    );

    // Redis back (empty, like a restarted cache node): the cache is used again,
    // with no service restart.
    redis.restart();
    let hits = app.server.cache_stats().hits;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.server.cache_stats().hits == hits {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cache never came back"
        );
        assert_eq!(
            get_title(admin.clone(), fx.movie_id.clone()).await.unwrap(),
            "Written while Redis was down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A write whose invalidation fails while Redis keeps its data (here: INCR
/// revoked by ACL) must not let the old entry be served once Redis works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missed_invalidation_never_serves_the_stale_entry() {
    let redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| use_redis(c, &url)).await;
    let mut admin = app.admin().await;
    let movie = app.create_movie(&mut admin, "Before").await;
    let title = |mut client: Client, movie_id: String| async move {
        client
            .catalog
            .get_movie(proto::GetMovieRequest { movie_id })
            .await
            .unwrap()
            .into_inner()
            .movie
            .unwrap()
            .title
    };
    title(admin.clone(), movie.id.clone()).await;
    assert_eq!(title(admin.clone(), movie.id.clone()).await, "Before");
    let hits = app.server.cache_stats().hits;
    assert_eq!(hits, 1, "the old title is cached");

    assert!(
        redis
            .cli(&["acl", "setuser", "default", "-incr"])
            .contains("OK")
    );
    app.rename_movie(&mut admin, &movie.id, "After").await;
    assert_eq!(
        title(admin.clone(), movie.id.clone()).await,
        "After",
        "while Redis refuses"
    );

    assert!(
        redis
            .cli(&["acl", "setuser", "default", "+incr"])
            .contains("OK")
    );
    assert_eq!(
        title(admin.clone(), movie.id.clone()).await,
        "After",
        "after Redis recovers"
    );
    assert_eq!(title(admin.clone(), movie.id.clone()).await, "After");
    assert_eq!(app.server.cache_stats().hits, hits + 1, "caching resumed");
}

/// A Redis that still holds an older `theatre_cache` library (one without the
/// invalidation function, as a previous release loaded it) gets the current
/// one loaded by the first write, whose invalidation then succeeds: no cache
/// error, the movies generation counts both movie writes and carries its long
/// expiry, and the next read of a cached entry misses and sees the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_older_cache_library_in_redis_is_replaced() {
    let redis = OwnRedis::start();
    let old_library = "#!lua name=theatre_cache\n\
        redis.register_function('theatre_cache_lookup', function(keys, args)\n\
          local counters = redis.call('MGET', unpack(keys))\n\
          for i = 1, #counters do\n\
            if not counters[i] then counters[i] = '0' end\n\
          end\n\
          local key = args[1] .. 'e' .. counters[1] .. ':g' .. table.concat(counters, '.', 2)\n\
          return {key, redis.call('GET', key)}\n\
        end)";
    assert!(
        redis
            .cli(&["function", "load", old_library])
            .contains("theatre_cache")
    );
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| use_redis(c, &url)).await;
    let mut admin = app.admin().await;
    let movie = app.create_movie(&mut admin, "Before").await;
    let list = |mut client: Client| async move {
        client
            .catalog
            .list_movies(proto::ListMoviesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .movies
            .into_iter()
            .map(|m| m.title)
            .collect::<Vec<_>>()
    };
    assert_eq!(list(admin.clone()).await, ["Before"]);
    assert_eq!(
        list(admin.clone()).await,
        ["Before"],
        "served from the cache"
    );
    assert_eq!(app.server.cache_stats().hits, 1);

    app.rename_movie(&mut admin, &movie.id, "After").await;
    assert!(
        redis
            .cli(&["function", "list", "libraryname", "theatre_cache"])
            .contains("theatre_cache_bump"),
        "the current library was loaded"
    );
    let counts = app.server.cache_stats();
    assert_eq!(counts.errors, 0, "no invalidation failed");
    let movies_generation = redis.cli(&["--raw", "keys", "*gen:movies"]);
    let key = movies_generation.trim();
    assert!(!key.is_empty(), "the movies generation exists");
    // Created, then updated: two bumps of the movies generation.
    assert_eq!(redis.cli(&["get", key]).trim(), "2");
    let ttl: i64 = redis.cli(&["pttl", key]).trim().parse().unwrap();
    assert!(
        ttl > 3_600_000,
        "the generation got its long expiry, not {ttl}"
    );
    assert_eq!(list(admin.clone()).await, ["After"]);
    assert_eq!(app.server.cache_stats().misses, counts.misses + 1);
}

/// The title of `movie_id` as `client`'s instance answers it.
async fn title_of(mut client: Client, movie_id: &str) -> String {
    client
        .catalog
        .get_movie(proto::GetMovieRequest {
            movie_id: movie_id.to_owned(),
        })
        .await
        .expect("get movie")
        .into_inner()
        .movie
        .unwrap()
        .title
}

/// Reads `movie_id` on `client`'s instance (`server`) until that instance
/// answers from its own copy, and returns the title.
async fn until_near_copy(server: &RunningServer, client: &Client, movie_id: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let copies = server.cache_stats().near_hits;
        let title = title_of(client.clone(), movie_id).await;
        if server.cache_stats().near_hits > copies {
            return title;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the instance never answered from its own copy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Each instance answers from its own copy, and a write on either is what
/// the other answers right after (the writer waited for its ack).
async fn a_write_on_one_instance_is_read_at_once_on_another(backend: Backend) {
    let app = cached_app(backend).await;
    let sibling = app.sibling().await;
    let mut admin = app.admin().await;
    let movie = app.create_movie(&mut admin, "Take 0").await;
    let mut admin_there = Client::there(&sibling, &admin).await;
    let ann = app.user("ann").await;
    let ann_there = Client::there(&sibling, &ann).await;
    assert_eq!(
        until_near_copy(&app.server, &ann, &movie.id).await,
        "Take 0"
    );
    assert_eq!(
        until_near_copy(&sibling, &ann_there, &movie.id).await,
        "Take 0"
    );
    for take in 1..=10 {
        let title = format!("Take {take}");
        let (writer, reader, reader_server) = if take % 2 == 0 {
            (&mut admin, &ann_there, &sibling)
        } else {
            (&mut admin_there, &ann, &app.server)
        };
        app.rename_movie(writer, &movie.id, &title).await;
        assert_eq!(
            title_of(reader.clone(), &movie.id).await,
            title,
            "the other instance's next read, right after the write answered"
        );
        // The reader holds a copy again for the next write to drop.
        assert_eq!(
            until_near_copy(reader_server, reader, &movie.id).await,
            title
        );
    }
    for stats in [app.server.cache_stats(), sibling.cache_stats()] {
        assert!(
            stats.near_waits >= 5,
            "every write waited for the other: {stats:?}"
        );
        assert_eq!(stats.near_lapses, 0, "and it always acked: {stats:?}");
    }
}

/// An instance that vanished without giving up its lease holds writes until
/// the lease runs out, and no longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_gone_without_leaving_holds_writes_until_its_lease_ends() {
    let redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        use_redis(c, &url);
        c.cache.prefix = "gone:".into();
    })
    .await;
    let mut admin = app.admin().await;
    let movie = app.create_movie(&mut admin, "Before").await;
    until_near_copy(&app.server, &admin, &movie.id).await;

    let time = redis.cli(&["--raw", "time"]);
    let mut words = time.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    let now_ms = words.next().unwrap() * 1000 + words.next().unwrap() / 1000;
    let expiry = (now_ms + 700).to_string();
    redis.cli(&["zadd", "gone:near:members", &expiry, "ghost"]);

    let started = std::time::Instant::now();
    app.rename_movie(&mut admin, &movie.id, "While a ghost holds a lease")
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500),
        "the write waited out the lease, not {waited:?}"
    );
    assert_eq!(app.server.cache_stats().near_lapses, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.rename_movie(&mut admin, &movie.id, "After").await;
    assert_eq!(
        app.server.cache_stats().near_lapses,
        1,
        "an expired lease holds nothing"
    );
    assert_eq!(title_of(admin.clone(), &movie.id).await, "After");
}

/// With Redis gone nobody can be told to drop a copy: a write answers only
/// once the other instances' leases (not renewable now) have run out, so
/// their next read is the write's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_gone_a_write_outlives_the_other_copies() {
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Sqlite, |c| use_redis(c, &url)).await;
    let sibling = app.sibling().await;
    let mut admin = app.admin().await;
    let movie = app.create_movie(&mut admin, "Before").await;
    let there = Client::there(&sibling, &admin).await;
    until_near_copy(&app.server, &admin, &movie.id).await;
    assert_eq!(until_near_copy(&sibling, &there, &movie.id).await, "Before");

    redis.stop();
    app.rename_movie(&mut admin, &movie.id, "After").await;
    assert_eq!(
        title_of(there.clone(), &movie.id).await,
        "After",
        "the other instance's copy ended before the write answered"
    );
}
