//! The one integration-test binary: it runs the real `box` in temp folders.

mod api;
mod boxfile;
mod foundation;
mod ssh;
mod sshd;
mod support;
