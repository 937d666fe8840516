//! The render cache: each of `/`, `/api/status` and `/metrics` is rendered at most
//! every [`RENDER_EVERY`](super::RENDER_EVERY) however many read it, readers never wait
//! for a re-render, and any `POST` drops the rendered bodies at once.

use std::sync::Mutex;

use super::{RENDER_EVERY, Web};

/// A rendered body and when it was rendered.
pub(super) struct Rendered {
    at: std::time::Instant,
    body: axum::body::Bytes,
    /// A reader is rendering it anew.
    rendering: bool,
}

/// The rendered bodies by route.
pub(super) type Cache = Mutex<std::collections::HashMap<&'static str, Rendered>>;

/// The body of `route` from `cache` if rendered within [`RENDER_EVERY`] or being
/// rendered by another reader; else rendered now with `render`.
fn cached<E>(
    cache: &Cache,
    route: &'static str,
    render: impl FnOnce() -> Result<Vec<u8>, E>,
) -> Result<axum::body::Bytes, E> {
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    {
        let mut cache = lock();
        if let Some(r) = cache.get_mut(route) {
            if r.at.elapsed() < RENDER_EVERY || r.rendering {
                return Ok(r.body.clone());
            }
            r.rendering = true;
        }
    }
    let rendered = render();
    let mut cache = lock();
    match rendered {
        Ok(body) => {
            let body = axum::body::Bytes::from(body);
            cache.insert(
                route,
                Rendered {
                    at: std::time::Instant::now(),
                    body: body.clone(),
                    rendering: false,
                },
            );
            Ok(body)
        }
        Err(e) => {
            if let Some(r) = cache.get_mut(route) {
                r.rendering = false;
            }
            Err(e)
        }
    }
}

impl Web {
    /// The body of `route` as rendered within the last [`RENDER_EVERY`], or rendered now.
    /// While one reader renders a stale body anew, the others get the stale one at once
    /// (no reader waits for another's render); after [`Web::invalidate`] there is no
    /// stale body, so the next readers see the change.
    pub(super) fn cached<E>(
        &self,
        route: &'static str,
        render: impl FnOnce() -> Result<Vec<u8>, E>,
    ) -> Result<axum::body::Bytes, E> {
        cached(&self.cache, route, render)
    }

    /// Forgets every rendered body (after anything that changes what they show).
    pub(super) fn invalidate(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn render(count: &Cell<u32>, body: &str) -> Result<Vec<u8>, ()> {
        count.set(count.get() + 1);
        Ok(body.as_bytes().to_vec())
    }

    #[test]
    fn a_body_is_rendered_once_per_window() {
        let cache = Cache::default();
        let n = Cell::new(0);
        assert_eq!(&cached(&cache, "page", || render(&n, "a")).unwrap()[..], b"a");
        assert_eq!(&cached(&cache, "page", || render(&n, "b")).unwrap()[..], b"a");
        assert_eq!(n.get(), 1, "the second reader got the first render");
        assert_eq!(&cached(&cache, "status", || render(&n, "s")).unwrap()[..], b"s");
        assert_eq!(n.get(), 2, "each route has its own body");
    }

    #[test]
    fn a_stale_body_is_served_while_another_reader_renders() {
        let cache = Cache::default();
        let n = Cell::new(0);
        cached(&cache, "page", || render(&n, "old")).unwrap();
        cache.lock().unwrap().get_mut("page").unwrap().at -= RENDER_EVERY;
        // Reader one starts a re-render; inside it, reader two gets the stale body.
        let outer = cached(&cache, "page", || {
            let inner = cached(&cache, "page", || render(&n, "never")).unwrap();
            assert_eq!(&inner[..], b"old");
            render(&n, "new")
        })
        .unwrap();
        assert_eq!(&outer[..], b"new");
        assert_eq!(n.get(), 2);
        assert_eq!(&cached(&cache, "page", || render(&n, "x")).unwrap()[..], b"new");
    }

    #[test]
    fn a_failed_render_is_not_kept() {
        let cache = Cache::default();
        let n = Cell::new(0);
        cached(&cache, "page", || render(&n, "old")).unwrap();
        cache.lock().unwrap().get_mut("page").unwrap().at -= RENDER_EVERY;
        assert!(cached(&cache, "page", || Err::<Vec<u8>, ()>(())).is_err());
        // The failure released the slot: the next reader renders.
        assert_eq!(&cached(&cache, "page", || render(&n, "new")).unwrap()[..], b"new");
    }
}
