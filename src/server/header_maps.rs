//! A small per-thread stock of emptied header maps, so that a response's header map is
//! the allocation a finished request gave back rather than a new one.
//!
//! A response ends with a dozen headers; a header map of that size is larger than the
//! allocator's per-thread cache serves, so allocating one per response goes to the shared
//! heap (and makes it consolidate its small free chunks) on every request. The maps cycle
//! instead: hyper keeps a written response's emptied map to parse the connection's next
//! request into, and that request's map comes back here once the request is answered.

use std::cell::RefCell;

use http::HeaderMap;

/// Maps kept per thread: a worker answers one request at a time per poll, so a few cover
/// the maps in flight between two polls.
const STOCK: usize = 4;

/// Maps with room for more headers than this go back to the allocator: a request with an
/// unusual number of headers must not pin its large map for the thread's life.
const LARGEST_KEPT: usize = 32;

thread_local! {
    static SPARE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty map with room for at least `capacity` headers: one given back on this
/// thread if there is one large enough, a new one otherwise.
pub fn take(capacity: usize) -> HeaderMap {
    let spare = SPARE.try_with(|spare| spare.borrow_mut().pop()).ok().flatten();
    match spare {
        Some(map) if map.capacity() >= capacity => map,
        _ => HeaderMap::with_capacity(capacity),
    }
}

/// Empties `map` and keeps it for a later [`take`] on this thread, if it is of the usual
/// size and the stock is not full.
pub fn give_back(mut map: HeaderMap) {
    if map.capacity() > LARGEST_KEPT {
        return;
    }
    map.clear();
    let _ = SPARE.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < STOCK {
            spare.push(map);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_back_map_is_taken_again_empty() {
        let mut map = HeaderMap::with_capacity(12);
        map.insert(http::header::HOST, http::HeaderValue::from_static("example.com"));
        let capacity = map.capacity();
        give_back(map);
        let again = take(12);
        assert!(again.is_empty());
        assert_eq!(again.capacity(), capacity);
        // Nothing left: a new map.
        let fresh = take(12);
        assert!(fresh.capacity() >= 12);
    }

    #[test]
    fn large_maps_and_a_full_stock_are_not_kept() {
        give_back(HeaderMap::with_capacity(LARGEST_KEPT * 4));
        assert!(take(1).capacity() <= LARGEST_KEPT * 2, "the large map was kept");
        for _ in 0..STOCK * 2 {
            give_back(HeaderMap::with_capacity(12));
        }
        let kept = SPARE.with(|spare| spare.borrow().len());
        assert_eq!(kept, STOCK);
    }

    #[test]
    fn a_map_too_small_for_the_request_is_replaced() {
        give_back(HeaderMap::with_capacity(2));
        assert!(take(12).capacity() >= 12);
    }
}
