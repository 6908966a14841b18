//! CatalogService handlers: validate → one repo call → map to the response.
use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    repo::{self, movie_to_proto, show_to_proto},
    validate,
};
use crate::{
    cache::{Cache, Entry, Generation},
    clock::Clock,
    config::ShowPolicy,
    db::Database,
    entity::{seat, theatre},
    ids::{MovieId, ShowId},
    proto::{self, catalog_service_server::CatalogService},
};

pub struct CatalogApi {
    db: Database,
    cache: Cache,
    clock: Arc<dyn Clock>,
    shows: ShowPolicy,
}

impl CatalogApi {
    pub fn new(db: Database, cache: Cache, clock: Arc<dyn Clock>, shows: ShowPolicy) -> Self {
        Self {
            db,
            cache,
            clock,
            shows,
        }
    }
}

fn theatre_to_proto(t: theatre::Model) -> proto::Theatre {
    proto::Theatre {
        id: t.id.to_string(),
        name: t.name,
        city: t.city,
    }
}

fn seat_to_proto(s: seat::Model) -> proto::Seat {
    let status = if s.booking_id.is_some() {
        proto::SeatStatus::Booked
    } else {
        proto::SeatStatus::Available
    };
    proto::Seat {
        seat_id: s.seat_id,
        row: s.row_label,
        number: s.number,
        price_cents: s.price_cents,
        status: status.into(),
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn create_movie(
        &self,
        request: Request<proto::CreateMovieRequest>,
    ) -> Result<Response<proto::CreateMovieResponse>, Status> {
        let new = validate::new_movie(request.get_ref())?;
        let movie = repo::create_movie(&self.db, new, self.clock.now()).await?;
        self.cache.invalidate(&[Generation::Movies]).await;
        tracing::info!(movie_id = %movie.id, "movie created");
        Ok(Response::new(proto::CreateMovieResponse {
            movie: Some(movie_to_proto(movie)),
        }))
    }

    async fn update_movie(
        &self,
        request: Request<proto::UpdateMovieRequest>,
    ) -> Result<Response<proto::UpdateMovieResponse>, Status> {
        let (id, patch) = validate::movie_patch(request.get_ref())?;
        let movie =
            repo::update_movie(&self.db, id, patch, self.clock.now(), self.shows.changeover)
                .await?;
        // Shows display the movie title.
        self.cache
            .invalidate(&[Generation::Movies, Generation::Shows])
            .await;
        Ok(Response::new(proto::UpdateMovieResponse {
            movie: Some(movie_to_proto(movie)),
        }))
    }

    async fn delete_movie(
        &self,
        request: Request<proto::DeleteMovieRequest>,
    ) -> Result<Response<proto::DeleteMovieResponse>, Status> {
        let id = MovieId::parse("movie_id", &request.get_ref().movie_id)?;
        let deletion = repo::delete_movie(&self.db, id, self.clock.now()).await?;
        self.cache
            .invalidate(&[Generation::Movies, Generation::Shows, Generation::Seats])
            .await;
        tracing::info!(
            movie_id = %id,
            deleted_shows = deletion.deleted_shows,
            cancelled_bookings = deletion.cancelled_bookings,
            "movie deleted"
        );
        Ok(Response::new(proto::DeleteMovieResponse {
            deleted_shows: count(deletion.deleted_shows),
            cancelled_bookings: count(deletion.cancelled_bookings),
        }))
    }

    async fn get_movie(
        &self,
        request: Request<proto::GetMovieRequest>,
    ) -> Result<Response<proto::GetMovieResponse>, Status> {
        let id = MovieId::parse("movie_id", &request.get_ref().movie_id)?;
        let response = self
            .cache
            .get_or_load(Entry::Movie(id), || async {
                let movie = repo::get_movie(self.db.conn(), id).await?;
                Ok(proto::GetMovieResponse {
                    movie: Some(movie_to_proto(movie)),
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn list_movies(
        &self,
        request: Request<proto::ListMoviesRequest>,
    ) -> Result<Response<proto::ListMoviesResponse>, Status> {
        let req = request.get_ref();
        let page = validate::page(req.page_size, &req.page_token)?;
        let entry = Entry::MoviePage {
            size: page.size,
            after: page.after,
        };
        let response = self
            .cache
            .get_or_load(entry, || async {
                let (movies, more) = repo::list_movies(self.db.conn(), &page).await?;
                let next_page_token = match movies.last() {
                    Some(last) if more => validate::page_token(last.id),
                    _ => String::new(),
                };
                Ok(proto::ListMoviesResponse {
                    movies: movies.into_iter().map(movie_to_proto).collect(),
                    next_page_token,
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn create_theatre(
        &self,
        request: Request<proto::CreateTheatreRequest>,
    ) -> Result<Response<proto::CreateTheatreResponse>, Status> {
        let new = validate::new_theatre(request.get_ref())?;
        let theatre = repo::create_theatre(&self.db, new, self.clock.now()).await?;
        Ok(Response::new(proto::CreateTheatreResponse {
            theatre: Some(theatre_to_proto(theatre)),
        }))
    }

    async fn list_theatres(
        &self,
        _request: Request<proto::ListTheatresRequest>,
    ) -> Result<Response<proto::ListTheatresResponse>, Status> {
        let theatres = repo::list_theatres(self.db.conn()).await?;
        Ok(Response::new(proto::ListTheatresResponse {
            theatres: theatres.into_iter().map(theatre_to_proto).collect(),
        }))
    }

    async fn create_show(
        &self,
        request: Request<proto::CreateShowRequest>,
    ) -> Result<Response<proto::CreateShowResponse>, Status> {
        let now = self.clock.now();
        let new = validate::new_show(request.get_ref(), now, self.shows.horizon)?;
        let view = repo::create_show(&self.db, new, now, self.shows.changeover).await?;
        self.cache.invalidate(&[Generation::Shows]).await;
        tracing::info!(show_id = %view.show.id, "show created");
        Ok(Response::new(proto::CreateShowResponse {
            show: Some(show_to_proto(view)),
        }))
    }

    async fn delete_show(
        &self,
        request: Request<proto::DeleteShowRequest>,
    ) -> Result<Response<proto::DeleteShowResponse>, Status> {
        let id = ShowId::parse("show_id", &request.get_ref().show_id)?;
        let cancelled = repo::delete_show(&self.db, id, self.clock.now()).await?;
        self.cache
            .invalidate(&[
                Generation::Shows,
                Generation::Seats,
                Generation::SeatsOf(id),
            ])
            .await;
        tracing::info!(show_id = %id, cancelled_bookings = cancelled, "show deleted");
        Ok(Response::new(proto::DeleteShowResponse {
            cancelled_bookings: count(cancelled),
        }))
    }

    async fn get_show(
        &self,
        request: Request<proto::GetShowRequest>,
    ) -> Result<Response<proto::GetShowResponse>, Status> {
        let id = ShowId::parse("show_id", &request.get_ref().show_id)?;
        let response = self
            .cache
            .get_or_load(Entry::Show(id), || async {
                let view = repo::get_show(self.db.conn(), id).await?;
                Ok(proto::GetShowResponse {
                    show: Some(show_to_proto(view)),
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn list_shows(
        &self,
        request: Request<proto::ListShowsRequest>,
    ) -> Result<Response<proto::ListShowsResponse>, Status> {
        let raw = &request.get_ref().movie_id;
        let movie = (!raw.is_empty())
            .then(|| MovieId::parse("movie_id", raw))
            .transpose()?;
        let response = self
            .cache
            .get_or_load(Entry::ShowList(movie), || async {
                let shows = repo::list_shows(self.db.conn(), movie).await?;
                Ok(proto::ListShowsResponse {
                    shows: shows.into_iter().map(show_to_proto).collect(),
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn get_seat_map(
        &self,
        request: Request<proto::GetSeatMapRequest>,
    ) -> Result<Response<proto::GetSeatMapResponse>, Status> {
        let id = ShowId::parse("show_id", &request.get_ref().show_id)?;
        let response = self
            .cache
            .get_or_load(Entry::SeatMap(id), || async {
                let seats = repo::seat_map(self.db.conn(), id).await?;
                Ok(proto::GetSeatMapResponse {
                    show_id: id.to_string(),
                    seats: seats.into_iter().map(seat_to_proto).collect(),
                })
            })
            .await?;
        Ok(Response::new(response))
    }
}
