//! The queue-tail bridge: session files, dispatch to `aiwg serve`, status
//! write-back and the tailer that drives them. Plain Rust, no napi.

pub mod concurrent_update;
pub mod dispatch;
pub mod events;
pub mod executor_ws;
pub mod journal;
pub mod log;
pub mod mission;
pub mod path_queue;
pub mod session;
pub mod session_lock;
pub mod sidecar;
pub mod status;
pub mod tailer;
#[cfg(test)]
pub mod testing;
