//! Tagging: request source, resource group, priority and friends in `kvrpcpb::Context`.
//!
//! [`TagLayer`] stamps, on every request, the tags of its operation
//! ([`OpState::tags`](crate::OpState::tags)) falling back to the layer's defaults:
//! `request_source`, `resource_control_context.resource_group_name`,
//! `resource_group_tag` (from the tags, else from a *tagger* callback computing it from
//! the request, client-go `ResourceGroupTagger`), `priority`, `disk_full_opt`,
//! `txn_source`, `request_origin`, `source_stmt`, `not_fill_cache`. Fields that neither
//! sets are left as the caller wrote them. Placed above the shard layer, every part
//! inherits the stamped context.
//!
//! client-go counterpart: `tikvrpc.Request` context setters (`SetRequestSource`,
//! `ResourceGroupTag`, `ResourceGroupTagger`, `Priority`, `DiskFullOpt`, `TxnSource`,
//! `ResourceControlContext`).
//!
//! # Example
//!
//! ```
//! use tikv_tower_layers::{tag::TagLayer, RequestTags};
//! let layer = TagLayer::new(RequestTags { request_source: Some("external_app".into()), ..Default::default() })
//!     .with_tagger(|req| Some(req.kind().as_str().as_bytes().to_vec()));
//! # let _ = layer;
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use tikv_tower_proto::kvrpcpb;
use tikv_tower_proto::rpc::StoreRequest;
use tower_layer::Layer;
use tower_service::Service;

use crate::request::{Request, RequestTags};

/// Computes `Context.resource_group_tag` from a request (client-go `ResourceGroupTagger`).
pub type Tagger = Arc<dyn Fn(&StoreRequest) -> Option<Vec<u8>> + Send + Sync>;

/// Layer adding [`Tag`].
#[derive(Clone, Default)]
pub struct TagLayer {
    defaults: Arc<RequestTags>,
    tagger: Option<Tagger>,
}

impl fmt::Debug for TagLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TagLayer")
            .field("defaults", &self.defaults)
            .field("tagger", &self.tagger.is_some())
            .finish()
    }
}

impl TagLayer {
    /// Stamp these defaults.
    pub fn new(defaults: RequestTags) -> Self {
        TagLayer {
            defaults: Arc::new(defaults),
            tagger: None,
        }
    }
    /// Compute the resource group tag with `f` when the operation sets none.
    pub fn with_tagger(
        mut self,
        f: impl Fn(&StoreRequest) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> Self {
        self.tagger = Some(Arc::new(f));
        self
    }
}

impl<S> Layer<S> for TagLayer {
    type Service = Tag<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Tag {
            inner,
            layer: self.clone(),
        }
    }
}

/// The tagging service (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Tag<S> {
    inner: S,
    layer: TagLayer,
}

/// Stamp `tags` (over `defaults`) into `ctx`.
pub fn stamp_tags(ctx: &mut kvrpcpb::Context, tags: &RequestTags, defaults: &RequestTags) {
    if let Some(s) = tags
        .request_source
        .as_ref()
        .or(defaults.request_source.as_ref())
    {
        ctx.request_source = s.clone();
    }
    if let Some(name) = tags
        .resource_group_name
        .as_ref()
        .or(defaults.resource_group_name.as_ref())
    {
        ctx.resource_control_context
            .get_or_insert_with(Default::default)
            .resource_group_name = name.clone();
    }
    if let Some(t) = tags
        .resource_group_tag
        .as_ref()
        .or(defaults.resource_group_tag.as_ref())
    {
        ctx.resource_group_tag = t.clone();
    }
    if let Some(p) = tags.priority.or(defaults.priority) {
        ctx.priority = p as i32;
    }
    if let Some(d) = tags.disk_full_opt.or(defaults.disk_full_opt) {
        ctx.disk_full_opt = d as i32;
    }
    if let Some(t) = tags.txn_source.or(defaults.txn_source) {
        ctx.txn_source = t;
    }
    if let Some(o) = tags.request_origin.or(defaults.request_origin) {
        ctx.request_origin = o as i32;
    }
    if let Some(s) = tags.source_stmt.as_ref().or(defaults.source_stmt.as_ref()) {
        ctx.source_stmt = Some(s.clone());
    }
    if let Some(b) = tags.not_fill_cache.or(defaults.not_fill_cache) {
        ctx.not_fill_cache = b;
    }
}

impl<S> Service<Request> for Tag<S>
where
    S: Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let op = req.op.clone();
        let tags = op.tags();
        if tags.resource_group_tag.is_none() && self.layer.defaults.resource_group_tag.is_none() {
            if let Some(tag) = self.layer.tagger.as_ref().and_then(|f| f(&req.inner)) {
                req.context_mut().resource_group_tag = tag.into();
            }
        }
        stamp_tags(req.context_mut(), tags, &self.layer.defaults);
        self.inner.call(req)
    }
}
