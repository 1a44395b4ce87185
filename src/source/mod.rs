//! The three inputs. Each reads bytes, frames them into lines and hands
//! every line to a [`crate::route::Router`]; none of them knows about
//! formats or Kafka. All stop reading when the stop token is cancelled.

pub mod activation;
pub mod file;
pub mod stdin;
mod stream;
pub mod tcp;
