//! QEMU guests as box runs them: the command lines, a QMP client, the
//! choice of accelerator, the `qemu-img` disks, the cloud-init data a
//! new guest is given, and reading the box store it boots from.
//!
//! box's local provider and the CloudStack simulator's `--backing qemu`
//! both stand on this crate; it knows nothing of either.

pub mod accel;
pub mod cloudinit;
pub mod disk;
pub mod idle;
pub mod qemu;
pub mod qmp;
pub mod store;
