//! How many requests a client has in flight at once, sized to what the
//! cloud accepts: CloudStack throttles each account (`api.throttling.max`)
//! and answers 429 beyond it. Additive increase, multiplicative decrease:
//! the limit halves on a 429 and grows by one on each answered request.

use std::sync::Mutex;

use tokio::sync::Notify;

/// The limit a client starts with, and the most it grows to.
const INITIAL: usize = 32;
const MAX: usize = 256;

#[derive(Debug)]
pub(crate) struct Throttle {
    state: Mutex<State>,
    freed: Notify,
}

#[derive(Debug)]
struct State {
    limit: usize,
    in_flight: usize,
    /// Bumped on each halving, so a burst of 429s to requests sent under
    /// one limit halves it once, not once per request.
    generation: u64,
}

/// One request in flight; tell it how the request went.
pub(crate) struct Permit<'a> {
    throttle: &'a Throttle,
    generation: u64,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            state: Mutex::new(State {
                limit: INITIAL,
                in_flight: 0,
                generation: 0,
            }),
            freed: Notify::new(),
        }
    }
}

impl Throttle {
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut s = self.lock();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return Permit {
                        throttle: self,
                        generation: s.generation,
                    };
                }
            }
            freed.await;
        }
    }

    /// The current limit (for tests and logs).
    pub(crate) fn limit(&self) -> usize {
        self.lock().limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Permit<'_> {
    /// The answer's HTTP status (`None`: no answer, which says nothing
    /// about the cloud's limit).
    pub(crate) fn answered(self, status: Option<u16>) {
        let mut s = self.throttle.lock();
        match status {
            Some(429) if self.generation == s.generation => {
                s.limit = (s.limit / 2).max(1);
                s.generation += 1;
            }
            Some(429) | None => {}
            Some(_) => s.limit = (s.limit + 1).min(MAX),
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.throttle.lock().in_flight -= 1;
        self.throttle.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_429s_halves_the_limit_once_and_successes_grow_it_by_one() {
        let t = Throttle::default();
        let permits: Vec<_> = futures_join(&t, 4).await;
        for p in permits {
            p.answered(Some(429));
        }
        assert_eq!(t.limit(), INITIAL / 2);
        t.acquire().await.answered(Some(200));
        assert_eq!(t.limit(), INITIAL / 2 + 1);
        t.acquire().await.answered(None);
        assert_eq!(t.limit(), INITIAL / 2 + 1);
    }

    #[tokio::test]
    async fn no_more_than_the_limit_are_in_flight() {
        let t = Throttle::default();
        t.lock().limit = 2;
        let a = t.acquire().await;
        let _b = t.acquire().await;
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), t.acquire()).await;
        assert!(third.is_err(), "a third request went past a limit of 2");
        drop(a);
        let third = tokio::time::timeout(std::time::Duration::from_secs(5), t.acquire()).await;
        assert!(third.is_ok(), "a freed slot was not handed on");
    }

    async fn futures_join(t: &Throttle, n: usize) -> Vec<Permit<'_>> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(t.acquire().await);
        }
        v
    }
}
