//! AIP-158 pagination: page sizes (0 is the default, above the maximum is
//! capped, not refused) and page tokens that are opaque to clients and
//! checked on return. A token is the last row's sort key with an HMAC over it
//! and the listing it came from, so a client can neither forge a position nor
//! carry a token from one listing (another user's bookings, another movie's
//! shows) to another.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// A page size of 0 asks for this many.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// The most rows one page holds; a larger page size is capped to it.
pub const MAX_PAGE_SIZE: u64 = 100;
/// Bytes of the HMAC kept in a token: enough that guessing one is hopeless.
const TAG_LEN: usize = 16;

/// A page request: how many rows, and the sort key of the row it starts after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    pub size: u64,
    pub after: Option<C>,
}

impl<C> PageRequest<C> {
    /// The page in `rows`, fetched with a limit of `size + 1`: at most
    /// `size` rows, and whether more follow them.
    pub fn of<T>(&self, mut rows: Vec<T>) -> (Vec<T>, bool) {
        let more = rows.len() as u64 > self.size;
        rows.truncate(self.size as usize);
        (rows, more)
    }
}

/// A sort key a listing resumes after, as the bytes a token carries.
pub trait Cursor: Sized {
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

impl Cursor for Uuid {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes).ok()
    }
}

/// `(starts_at, id)`: shows by start time.
impl Cursor for (DateTime<Utc>, Uuid) {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.0.timestamp_micros().to_be_bytes().to_vec();
        out.extend_from_slice(self.1.as_bytes());
        out
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (micros, id) = bytes.split_at_checked(8)?;
        let micros = i64::from_be_bytes(micros.try_into().ok()?);
        Some((
            DateTime::from_timestamp_micros(micros)?,
            Uuid::from_slice(id).ok()?,
        ))
    }
}

/// `(city, name)`: theatres in alphabetical order.
impl Cursor for (String, String) {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = (self.0.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(self.0.as_bytes());
        out.extend_from_slice(self.1.as_bytes());
        out
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (len, rest) = bytes.split_at_checked(4)?;
        let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
        let (city, name) = rest.split_at_checked(len)?;
        Some((
            String::from_utf8(city.to_vec()).ok()?,
            String::from_utf8(name.to_vec()).ok()?,
        ))
    }
}

/// Makes and checks page tokens with a key of the server's.
#[derive(Clone)]
pub struct Pages {
    key: [u8; 32],
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pages(<key>)")
    }
}

impl Pages {
    /// Derives the token key from the server's secret (the token signing
    /// key), so every instance sharing it accepts the others' tokens.
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
        mac.update(b"theatre.v1 page tokens");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn tag(&self, listing: &str, cursor: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(listing.as_bytes());
        mac.update(&[0]);
        mac.update(cursor);
        let full = mac.finalize().into_bytes();
        full[..TAG_LEN].try_into().expect("SHA-256 is longer")
    }

    /// The page a request asks for in `listing` (such as `shows:<movie id>`).
    pub fn request<C: Cursor>(
        &self,
        listing: &str,
        page_size: i32,
        page_token: &str,
    ) -> AppResult<PageRequest<C>> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(AppError::invalid("page_size", "must not be negative")),
            n => (n as u64).min(MAX_PAGE_SIZE),
        };
        if page_token.is_empty() {
            return Ok(PageRequest { size, after: None });
        }
        let refused = || AppError::invalid("page_token", "is not a token this listing gave out");
        let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| refused())?;
        let (cursor, tag) = bytes
            .split_at_checked(bytes.len().saturating_sub(TAG_LEN))
            .ok_or_else(refused)?;
        // Constant-time comparison, through the MAC's own verifier.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(listing.as_bytes());
        mac.update(&[0]);
        mac.update(cursor);
        mac.verify_truncated_left(tag).map_err(|_| refused())?;
        let after = C::from_bytes(cursor).ok_or_else(refused)?;
        Ok(PageRequest {
            size,
            after: Some(after),
        })
    }

    /// The token of the page after the one ending at `last`, if more rows
    /// follow it; empty on the last page.
    pub fn next<C: Cursor>(&self, listing: &str, last: Option<C>, more: bool) -> String {
        match last {
            Some(last) if more => {
                let mut bytes = last.to_bytes();
                let tag = self.tag(listing, &bytes);
                bytes.extend_from_slice(&tag);
                URL_SAFE_NO_PAD.encode(bytes)
            }
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_only_in_their_own_listing() {
        let pages = Pages::from_secret(b"secret");
        let id = Uuid::now_v7();
        let token = pages.next("movies", Some(id), true);
        let back: PageRequest<Uuid> = pages.request("movies", 3, &token).unwrap();
        assert_eq!(
            back,
            PageRequest {
                size: 3,
                after: Some(id)
            }
        );
        assert!(
            pages
                .request::<Uuid>("bookings:someone", 3, &token)
                .is_err()
        );
        assert!(
            Pages::from_secret(b"other")
                .request::<Uuid>("movies", 3, &token)
                .is_err()
        );
        // One bit flipped anywhere is refused.
        let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        bytes[0] ^= 1;
        let forged = URL_SAFE_NO_PAD.encode(bytes);
        assert!(pages.request::<Uuid>("movies", 3, &forged).is_err());
        assert_eq!(
            pages.next("movies", Some(id), false),
            "",
            "no token on the last page"
        );
    }

    #[test]
    fn page_sizes_default_cap_and_refuse_negatives() {
        let pages = Pages::from_secret(b"secret");
        let size = |n| pages.request::<Uuid>("movies", n, "").map(|p| p.size);
        assert_eq!(size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(size(7).unwrap(), 7);
        assert_eq!(size(1000).unwrap(), MAX_PAGE_SIZE);
        assert!(size(-1).is_err());
    }

    #[test]
    fn cursors_round_trip() {
        let at = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let show = (at, Uuid::now_v7());
        assert_eq!(
            <(DateTime<Utc>, Uuid)>::from_bytes(&show.to_bytes()),
            Some(show)
        );
        let theatre = ("Lisbon".to_owned(), "Odeon".to_owned());
        assert_eq!(
            <(String, String)>::from_bytes(&theatre.to_bytes()),
            Some(theatre)
        );
    }
}
