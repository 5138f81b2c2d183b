//! Drive a hyper client connection and the exchange on it in one task, without the task waking itself.
//!
//! hyper's connection API returns a `Connection` future (the socket's reads and writes) and a `SendRequest`
//! handle; the two talk through a channel. Spawned as its own task (what hyper-util's client does), the
//! connection costs a spawn and a cross-task wake-up per message. Polled in the probe's own task by an
//! ordinary `select`, each message from one half wakes the task while the other half is being polled, and
//! tokio schedules a task woken during its own poll as a yield, which wakes an idle worker thread for it:
//! about one needless thread wake-up per HTTP probe (measured in tests/bench/RESULTS.md, 2026-11-25 04:00).
//!
//! [`Together`] polls both halves with a waker of its own: a wake-up that arrives while it is polling only
//! marks "poll again", which it does at once (a few rounds at most); a wake-up that arrives while it is not
//! polling (the socket became readable) goes to the task as usual.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Rounds of polling within one poll before yielding for real, so two halves that keep waking each other
/// cannot hold the worker.
const MAX_ROUNDS: usize = 16;

/// The connection future `conn` and the exchange `work` on it, polled together; finishes with `work`.
/// `conn` finishing first is not the end: hyper reports a connection's failure to the request it fails. A
/// finished `conn` is dropped at once (its end cancels what is still queued on it) and its output kept; after
/// `work` is done, [`Together::into_conn`] tells which it was. Await it as `(&mut both).await`.
pub(crate) struct Together<C: Future, W> {
    conn: Leftover<C>,
    work: Pin<Box<W>>,
    shared: Arc<Shared>,
    waker: Waker,
}

// The futures are boxed and a finished connection's output is never pinned: moving the struct is fine.
impl<C: Future, W> Unpin for Together<C, W> {}

/// What became of the connection future.
pub(crate) enum Leftover<C: Future> {
    /// Still running: the exchange ended first (the usual case with HTTP/1.1 keep-alive).
    Open(Pin<Box<C>>),
    /// It finished, with this output.
    Finished(C::Output),
}

impl<C: Future, W> std::fmt::Debug for Together<C, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let conn = if matches!(self.conn, Leftover::Open(_)) { "open" } else { "finished" };
        f.debug_struct("Together").field("conn", &conn).finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Shared {
    /// Set while [`Together::poll`] polls the halves.
    polling: AtomicBool,
    /// A half was woken since the current round started.
    again: AtomicBool,
    /// The task's waker, for wake-ups that arrive between polls.
    task: Mutex<Option<Waker>>,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // `again` first: a poll that reads it after clearing `polling` sees this wake-up; one that cleared
        // `polling` before this load has it passed to the task. Either way it is not lost.
        self.again.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            let task = self.task.lock().map(|mut t| t.take()).unwrap_or_else(|poisoned| poisoned.into_inner().take());
            if let Some(task) = task {
                task.wake();
            }
        }
    }
}

impl<C: Future, W: Future> Together<C, W> {
    pub(crate) fn new(conn: C, work: W) -> Self {
        let shared = Arc::new(Shared::default());
        let waker = Waker::from(shared.clone());
        Together { conn: Leftover::Open(Box::pin(conn)), work: Box::pin(work), shared, waker }
    }

    /// The connection future, still running or finished; the exchange is dropped.
    pub(crate) fn into_conn(self) -> Leftover<C> {
        self.conn
    }
}

impl<C: Future, W: Future> Future for Together<C, W> {
    type Output = W::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<W::Output> {
        let this = self.get_mut();
        match this.shared.task.lock() {
            Ok(mut task) => *task = Some(cx.waker().clone()),
            Err(poisoned) => *poisoned.into_inner() = Some(cx.waker().clone()),
        }
        let mut inner = Context::from_waker(&this.waker);
        for _ in 0..MAX_ROUNDS {
            // Cleared before `polling` is set: a wake-up in between reaches the task (a spare wake-up, not a
            // lost one), and every wake-up after it is seen at the end of the round.
            this.shared.again.store(false, Ordering::SeqCst);
            this.shared.polling.store(true, Ordering::SeqCst);
            if let Leftover::Open(conn) = &mut this.conn
                && let Poll::Ready(output) = conn.as_mut().poll(&mut inner)
            {
                this.conn = Leftover::Finished(output);
            }
            let work = this.work.as_mut().poll(&mut inner);
            this.shared.polling.store(false, Ordering::SeqCst);
            if work.is_ready() {
                return work;
            }
            if !this.shared.again.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts the wake-ups the task gets.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn halves_that_wake_each_other_finish_in_one_poll_without_waking_the_task() {
        // As in hyper: the work half sends a request to the connection half, which answers it.
        let (req_tx, req_rx) = tokio::sync::oneshot::channel::<()>();
        let (resp_tx, resp_rx) = tokio::sync::oneshot::channel::<u32>();
        let conn = async move {
            if req_rx.await.is_ok() {
                let _ = resp_tx.send(7);
            }
            std::future::pending::<()>().await
        };
        let work = async move {
            let _ = req_tx.send(());
            resp_rx.await.unwrap_or(0)
        };
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut both = Box::pin(Together::new(conn, work));
        assert_eq!(both.as_mut().poll(&mut cx), Poll::Ready(7));
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "the task was woken by its own halves");
    }

    #[test]
    fn a_wake_up_from_outside_reaches_the_task() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let conn = std::future::pending::<()>();
        let work = async move { rx.await.unwrap_or(0) };
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut both = Box::pin(Together::new(conn, work));
        assert_eq!(both.as_mut().poll(&mut cx), Poll::Pending);
        let sender = std::thread::spawn(move || tx.send(5));
        assert!(sender.join().is_ok_and(|sent| sent.is_ok()));
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task was not woken");
        assert_eq!(both.as_mut().poll(&mut cx), Poll::Ready(5));
    }

    #[test]
    fn a_finished_connection_is_dropped_and_its_output_kept() {
        // Like hyper's: the connection future owns the receiving end of the request queue, and keeps it when it
        // finishes. Only dropping the finished future tells the sender that nobody will answer.
        struct Ends(#[allow(dead_code)] tokio::sync::oneshot::Receiver<u32>);
        impl Future for Ends {
            type Output = &'static str;
            fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<&'static str> {
                Poll::Ready("closed")
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let conn = Ends(rx);
        let work = async move {
            tokio::task::yield_now().await;
            tx.send(1).is_err()
        };
        let waker = Waker::from(Arc::new(Count::default()));
        let mut cx = Context::from_waker(&waker);
        let mut both = Together::new(conn, work);
        assert_eq!(Pin::new(&mut both).poll(&mut cx), Poll::Ready(true), "the receiver was not dropped");
        assert!(matches!(both.into_conn(), Leftover::Finished("closed")));
    }

    #[test]
    fn halves_that_never_settle_yield_after_a_bound() {
        // A work half that wakes itself on every poll must not hold the thread.
        let work = std::future::poll_fn(|cx: &mut Context<'_>| {
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut both = Box::pin(Together::new(std::future::pending::<()>(), work));
        assert_eq!(both.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task was not rescheduled after the bound");
    }
}
