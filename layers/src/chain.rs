//! The onion-shaped hook chain that both interceptor layers are made of.
//!
//! [`intercept`](crate::intercept) (once per logical operation) and
//! [`rpc_intercept`](crate::rpc_intercept) (every store RPC attempt) run the same
//! mechanism over different hook traits: an ordered, shared list of hooks whose `before`
//! hooks run first-to-last (and may answer in place of the inner service) and whose `after`
//! hooks run last-to-first over the hooks that ran (client-go `RPCInterceptorChain`). This
//! module holds that mechanism once: the list ([`Chain`], copy-on-push), the layer
//! ([`ChainLayer`]), the service ([`ChainService`]) and its future ([`ChainFuture`]). A
//! hook trait plugs in by implementing [`Hook`] for its trait object; each layer module
//! keeps only what differs: its `before` loop (the service's `call`) and its `push`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_layer::Layer;

/// A hook trait object a [`Chain`] can hold.
pub trait Hook: Send + Sync + 'static {
    /// What the `after` hooks are told besides the outcome (`()` when nothing).
    type Info: Send;
    /// The outcome the `after` hooks see and may replace.
    type Outcome;
    /// The service's name in `Debug` output.
    const SERVICE: &'static str;
    /// The hook's name.
    fn hook_name(&self) -> &str;
    /// Runs the hook's `after` on `outcome`.
    fn run_after(&self, info: &Self::Info, outcome: &mut Self::Outcome);
    /// The outcome of a future polled again after it completed (a bug in the caller,
    /// reported as an error instead of a panic).
    fn spent() -> Self::Outcome;
}

/// An ordered list of hooks, shared by every service the layer makes.
pub struct Chain<H: ?Sized>(Arc<[Arc<H>]>);

impl<H: ?Sized> Clone for Chain<H> {
    fn clone(&self) -> Self {
        Chain(self.0.clone())
    }
}

impl<H: ?Sized> Default for Chain<H> {
    fn default() -> Self {
        Chain(Arc::from(Vec::<Arc<H>>::new()))
    }
}

impl<H: ?Sized> std::ops::Deref for Chain<H> {
    type Target = [Arc<H>];
    fn deref(&self) -> &[Arc<H>] {
        &self.0
    }
}

impl<H: ?Sized> Chain<H> {
    /// The chain with `hook` appended (a new list: services already made keep theirs).
    pub fn push(&self, hook: Arc<H>) -> Self {
        let mut v: Vec<Arc<H>> = self.0.iter().cloned().collect();
        v.push(hook);
        Chain(Arc::from(v))
    }
}

/// Layer wrapping a service in a [`ChainService`] over its chain of hooks.
pub struct ChainLayer<H: ?Sized> {
    pub(crate) chain: Chain<H>,
}

impl<H: ?Sized> Clone for ChainLayer<H> {
    fn clone(&self) -> Self {
        ChainLayer {
            chain: self.chain.clone(),
        }
    }
}

impl<H: ?Sized> Default for ChainLayer<H> {
    fn default() -> Self {
        ChainLayer {
            chain: Chain::default(),
        }
    }
}

impl<H: ?Sized + Hook> fmt::Debug for ChainLayer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.chain.iter().map(|h| h.hook_name().to_string()))
            .finish()
    }
}

impl<H: ?Sized> ChainLayer<H> {
    /// An empty chain (calls pass straight through).
    pub fn new() -> Self {
        Self::default()
    }
    /// Append a shared hook (runs after those already in the chain).
    pub fn push_arc(self, hook: Arc<H>) -> Self {
        ChainLayer {
            chain: self.chain.push(hook),
        }
    }
    /// Number of hooks.
    pub fn len(&self) -> usize {
        self.chain.len()
    }
    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }
}

impl<S, H: ?Sized> Layer<S> for ChainLayer<H> {
    type Service = ChainService<S, H>;
    fn layer(&self, inner: S) -> Self::Service {
        ChainService {
            inner,
            chain: self.chain.clone(),
        }
    }
}

/// The service running a chain of hooks around `inner` (its `Service` impls live with
/// each hook trait).
pub struct ChainService<S, H: ?Sized> {
    pub(crate) inner: S,
    pub(crate) chain: Chain<H>,
}

impl<S: Clone, H: ?Sized> Clone for ChainService<S, H> {
    fn clone(&self) -> Self {
        ChainService {
            inner: self.inner.clone(),
            chain: self.chain.clone(),
        }
    }
}

impl<S: fmt::Debug, H: ?Sized + Hook> fmt::Debug for ChainService<S, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(H::SERVICE)
            .field("inner", &self.inner)
            .field("len", &self.chain.len())
            .finish()
    }
}

pin_project! {
    /// Response future of a [`ChainService`]: the inner call's outcome (or the one a
    /// `before` hook answered with), then the `after` hooks of the hooks that ran,
    /// last-to-first.
    pub struct ChainFuture<F, H: ?Sized, I, O> {
        #[pin]
        inner: Option<F>,
        answered: Option<O>,
        info: Option<I>,
        chain: Chain<H>,
        ran: usize,
    }
}

impl<F, H: ?Sized + Hook> ChainFuture<F, H, H::Info, H::Outcome> {
    /// The inner service was called (`info: None` skips the `after` hooks).
    pub(crate) fn sent(fut: F, info: Option<H::Info>, chain: Chain<H>, ran: usize) -> Self {
        ChainFuture {
            inner: Some(fut),
            answered: None,
            info,
            chain,
            ran,
        }
    }

    /// A `before` hook answered: the inner service is not called; the first `ran` hooks
    /// see `outcome` in their `after`.
    pub(crate) fn answered(
        outcome: H::Outcome,
        info: H::Info,
        chain: Chain<H>,
        ran: usize,
    ) -> Self {
        ChainFuture {
            inner: None,
            answered: Some(outcome),
            info: Some(info),
            chain,
            ran,
        }
    }
}

impl<F, H> Future for ChainFuture<F, H, H::Info, H::Outcome>
where
    H: ?Sized + Hook,
    F: Future<Output = H::Outcome>,
{
    type Output = H::Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut out = match this.inner.as_pin_mut() {
            Some(f) => match f.poll(cx) {
                Poll::Ready(r) => r,
                Poll::Pending => return Poll::Pending,
            },
            None => this.answered.take().unwrap_or_else(H::spent),
        };
        if let Some(info) = this.info.as_ref() {
            for hook in this.chain[..*this.ran].iter().rev() {
                hook.run_after(info, &mut out);
            }
        }
        Poll::Ready(out)
    }
}
