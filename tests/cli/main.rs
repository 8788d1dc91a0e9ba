//! The one integration-test binary: it runs the real `box` in temp folders.

// Test helpers may print their own diagnostics; box's output is the Printer's.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod agent;
mod ansible;
mod api;
mod autostart;
mod boxes;
mod boxfile;
mod boxfile_fuzz;
mod chain;
mod cloud;
mod cloud_projects;
mod cloud_scale;
mod cloud_vpc;
mod cloudstack;
mod daily_loop;
mod docker;
mod foundation;
mod guest;
mod harness;
mod idle_share;
mod local;
mod lockfile;
mod logs;
mod ls;
mod mount;
mod ports;
mod provision;
mod publish;
mod pull;
mod schema;
mod sim;
mod sim_tenancy;
mod sim_vpc;
mod ssh;
mod ssh_holder;
mod sshd;
mod stacks;
mod state_v1;
mod support;
mod suspend;
mod sync;
mod triggers;
