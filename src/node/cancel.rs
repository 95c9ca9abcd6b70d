//! `AbortSignal` ⇄ cancellation token. napi's `AbortSignal` cannot cross into
//! async Rust, so the JS wrapper listens for `abort` and calls `cancel()`.

use napi_derive::napi;
use tokio_util::sync::CancellationToken;

/// A handle on a running native operation.
#[napi]
pub struct Operation {
    pub(crate) token: CancellationToken,
}

#[napi]
impl Operation {
    /// Abort (for a dispatch) or stop (for a tailer). Idempotent.
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.token.cancel();
    }
}

impl Operation {
    pub fn new(token: CancellationToken) -> Self {
        Operation { token }
    }
}
