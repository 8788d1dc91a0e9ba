//! The SSH layer: sessions on libssh2 with pinned host keys (not landed yet).
