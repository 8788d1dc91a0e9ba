//! The one integration-test binary: it runs the real `box` in temp folders.

mod api;
mod boxes;
mod boxfile;
mod cloud;
mod cloudstack;
mod foundation;
mod guest;
mod local;
mod provision;
mod sim;
mod ssh;
mod sshd;
mod support;
mod sync;
