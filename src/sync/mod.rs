//! Folder sync, host to guest, over SSH (not landed yet).
