//! CatalogService handlers: validate → one repo call → map to the response.

use crate::page::Pages;
use tonic::{Request, Response, Status};

use super::{repo, validate};
use crate::{
    auth::AdminCaller,
    cache::Entry,
    config::ShowPolicy,
    ids::{MovieId, ShowId},
    proto::{self, catalog_service_server::CatalogService},
    store::Store,
};

pub struct CatalogApi {
    store: Store,
    shows: ShowPolicy,
    pages: Pages,
}

impl CatalogApi {
    pub fn new(store: Store, shows: ShowPolicy, pages: Pages) -> Self {
        Self {
            store,
            shows,
            pages,
        }
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
        AdminCaller::of(&request)?;
        let new = validate::new_movie(request.get_ref())?;
        let movie = self
            .store
            .write(async |tx| repo::create_movie(tx, new).await)
            .await?;
        tracing::info!(movie_id = %movie.id, "movie created");
        Ok(Response::new(proto::CreateMovieResponse {
            movie: Some(movie.into()),
        }))
    }

    async fn update_movie(
        &self,
        request: Request<proto::UpdateMovieRequest>,
    ) -> Result<Response<proto::UpdateMovieResponse>, Status> {
        AdminCaller::of(&request)?;
        let (id, patch) = validate::movie_patch(request.get_ref())?;
        let changeover = self.shows.changeover;
        let movie = self
            .store
            .write(async |tx| repo::update_movie(tx, id, patch, changeover).await)
            .await?;
        Ok(Response::new(proto::UpdateMovieResponse {
            movie: Some(movie.into()),
        }))
    }

    async fn delete_movie(
        &self,
        request: Request<proto::DeleteMovieRequest>,
    ) -> Result<Response<proto::DeleteMovieResponse>, Status> {
        AdminCaller::of(&request)?;
        let id = MovieId::parse("movie_id", &request.get_ref().movie_id)?;
        let deletion = self
            .store
            .write(async |tx| repo::delete_movie(tx, id).await)
            .await?;
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
            .store
            .cache()
            .get_or_load(Entry::Movie(id), || async {
                let movie = repo::get_movie(self.store.reader(), id).await?;
                Ok(proto::GetMovieResponse {
                    movie: Some(movie.into()),
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
        let page = self
            .pages
            .request("movies", req.page_size, &req.page_token)?;
        let entry = Entry::MoviePage {
            size: page.size,
            after: page.after,
        };
        let response = self
            .store
            .cache()
            .get_or_load(entry, || async {
                let (movies, more) = repo::list_movies(self.store.reader(), &page).await?;
                let last = movies.last().map(|m| m.id.0);
                let next_page_token = self.pages.next("movies", last, more);
                Ok(proto::ListMoviesResponse {
                    movies: movies.into_iter().map(Into::into).collect(),
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
        AdminCaller::of(&request)?;
        let new = validate::new_theatre(request.get_ref())?;
        let theatre = self
            .store
            .write(async |tx| repo::create_theatre(tx, new).await)
            .await?;
        Ok(Response::new(proto::CreateTheatreResponse {
            theatre: Some(theatre.into()),
        }))
    }

    async fn list_theatres(
        &self,
        request: Request<proto::ListTheatresRequest>,
    ) -> Result<Response<proto::ListTheatresResponse>, Status> {
        let req = request.get_ref();
        let page = self
            .pages
            .request("theatres", req.page_size, &req.page_token)?;
        let (theatres, more) = repo::list_theatres(self.store.reader(), &page).await?;
        let last = theatres.last().map(|t| (t.city.clone(), t.name.clone()));
        Ok(Response::new(proto::ListTheatresResponse {
            next_page_token: self.pages.next("theatres", last, more),
            theatres: theatres.into_iter().map(Into::into).collect(),
        }))
    }

    async fn create_show(
        &self,
        request: Request<proto::CreateShowRequest>,
    ) -> Result<Response<proto::CreateShowResponse>, Status> {
        AdminCaller::of(&request)?;
        let now = self.store.now();
        let new = validate::new_show(request.get_ref(), now, self.shows.horizon)?;
        let changeover = self.shows.changeover;
        let view = self
            .store
            .write_at(now, async |tx| repo::create_show(tx, new, changeover).await)
            .await?;
        tracing::info!(show_id = %view.show.id, "show created");
        Ok(Response::new(proto::CreateShowResponse {
            show: Some(view.into()),
        }))
    }

    async fn delete_show(
        &self,
        request: Request<proto::DeleteShowRequest>,
    ) -> Result<Response<proto::DeleteShowResponse>, Status> {
        AdminCaller::of(&request)?;
        let id = ShowId::parse("show_id", &request.get_ref().show_id)?;
        let cancelled = self
            .store
            .write(async |tx| repo::delete_show(tx, id).await)
            .await?;
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
            .store
            .cache()
            .get_or_load(Entry::Show(id), || async {
                let view = repo::get_show(self.store.reader(), id).await?;
                Ok(proto::GetShowResponse {
                    show: Some(view.into()),
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn list_shows(
        &self,
        request: Request<proto::ListShowsRequest>,
    ) -> Result<Response<proto::ListShowsResponse>, Status> {
        let req = request.get_ref();
        let movie = (!req.movie_id.is_empty())
            .then(|| MovieId::parse("movie_id", &req.movie_id))
            .transpose()?;
        // A token continues the listing of the same movie (or of all shows).
        let listing = format!("shows:{}", movie.map(|m| m.to_string()).unwrap_or_default());
        let page = self
            .pages
            .request(&listing, req.page_size, &req.page_token)?;
        let entry = Entry::ShowList {
            movie,
            size: page.size,
            after: page.after,
        };
        let response = self
            .store
            .cache()
            .get_or_load(entry, || async {
                let (shows, more) = repo::list_shows(self.store.reader(), movie, &page).await?;
                let last = shows.last().map(|v| (v.show.starts_at, v.show.id.0));
                Ok(proto::ListShowsResponse {
                    next_page_token: self.pages.next(&listing, last, more),
                    shows: shows.into_iter().map(Into::into).collect(),
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
            .store
            .cache()
            .get_or_load(Entry::SeatMap(id), || async {
                let seats = repo::seat_map(self.store.reader(), id).await?;
                Ok(proto::GetSeatMapResponse {
                    show_id: id.to_string(),
                    seats: seats.into_iter().map(Into::into).collect(),
                })
            })
            .await?;
        Ok(Response::new(response))
    }
}
