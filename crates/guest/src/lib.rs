//! QEMU guests as box runs them: the command lines, a QMP client, the
//! choice of accelerator and the `qemu-img` disks.
//!
//! box's local provider and the CloudStack simulator's `--backing qemu`
//! both stand on this crate; it knows nothing of either.

pub mod accel;
pub mod disk;
pub mod qemu;
pub mod qmp;
