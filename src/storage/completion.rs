//! Storage calls finish once started: a write such as a failed login in the authentication
//! log must not be lost because the client hung up half-way through its request.
//! [`Completing`] polls the call in place, in the caller's task, and hands it over to a task
//! of its own only if it is dropped unfinished, so the usual path costs no extra task.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future that, if dropped before it is done, is finished in the background.
pub struct Completing<F: Future + Send + 'static>
where
    F::Output: Send + 'static,
{
    /// `None` once done.
    inner: Option<Pin<Box<F>>>,
}

impl<F: Future + Send + 'static> Completing<F>
where
    F::Output: Send + 'static,
{
    pub fn new(future: F) -> Self {
        Self { inner: Some(Box::pin(future)) }
    }
}

impl<F: Future + Send + 'static> Future for Completing<F>
where
    F::Output: Send + 'static,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Polled again after it was done: like any finished future, it has nothing more.
        let Some(future) = self.inner.as_mut() else { return Poll::Pending };
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.inner = None;
        Poll::Ready(output)
    }
}

impl<F: Future + Send + 'static> Drop for Completing<F>
where
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        if let Some(future) = self.inner.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // Without a runtime (it is shutting down) there is nothing left to finish on.
            drop(runtime.spawn(future));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn dropped_unfinished_it_still_completes() {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let call = Completing::new(async move {
            let _ = started_tx.send(());
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = done_tx.send(42);
        });
        let caller = tokio::spawn(call);
        started_rx.await.unwrap();
        caller.abort();
        assert_eq!(done_rx.await.unwrap(), 42, "finished after its caller went away");
    }

    #[tokio::test]
    async fn awaited_it_gives_the_output() {
        assert_eq!(Completing::new(async { 7 }).await, 7);
    }
}
