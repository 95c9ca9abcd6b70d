//! The queue-tail bridge: session files, dispatch to `aiwg serve`, status
//! write-back and the tailer that drives them. Plain Rust, no napi.

pub(crate) mod concurrent_update;
pub(crate) mod dispatch;
pub(crate) mod events;
pub(crate) mod executor_ws;
pub(crate) mod journal;
pub(crate) mod log;
pub(crate) mod mission;
pub(crate) mod path_queue;
pub(crate) mod pending_writes;
pub(crate) mod session;
pub(crate) mod session_lock;
pub(crate) mod sidecar;
pub(crate) mod status;
pub(crate) mod tailer;
#[cfg(test)]
pub(crate) mod testing;
